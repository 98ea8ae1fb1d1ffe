-- Convert backbone weights (safetensors, .npy folders) to HDF5: `realnet import FILE --arch NAME --out FILE.h5`.
--
-- Options: --strict (fail on unmappable tensors), --quiet. The input (a safetensors file, a folder of .npy
-- files, or another HDF5 store) may use any naming the backbone knows (torchvision, timm, the ONNX/Gluon
-- exports in ../shared/weights); the output holds the engine's weights: one dataset per engine parameter
-- ("layer1.0.conv1.weight" -> /layer1/0/conv1/weight, batch norms folded into the convolutions), with the
-- architecture and the source as root attributes. It loads with rn.backbone(NAME, {weights = FILE.h5}).
--
-- Source tensors that no rule maps are listed (and make --strict fail); stages whose weights are absent are
-- reported and simply left out. Exit status: 0 done, 1 nothing usable or a write failure, 2 bad usage.
local rn = require "realnet"
local cli = require "realnet.cli"

local SPEC = {
  name = "import",
  usage = "FILE --arch NAME --out FILE.h5 [--strict] [--quiet]",
  summary = "FILE: a .safetensors file, a folder of .npy files or an HDF5 store",
  positional = {{"file", metavar = "FILE", required = true, missing = "no input file"}},
  too_many = function(pos) return ("more than one input file (%s, %s)"):format(pos[1], pos[2]) end,
  options = {
    {"--arch", required = true, help = "one of " .. table.concat(rn.backbone_archs(), ", ")},
    {"--out", type = "path", metavar = "FILE.h5", required = true, help = "the HDF5 file to write"},
    {"--strict", type = "flag", help = "fail when a source tensor cannot be mapped (default: list it and go on)"},
    {"--quiet", type = "flag", help = "print nothing on success"},
  },
  epilog = "exit status: 0 done, 1 nothing usable or a write failure, 2 bad usage",
  help_stream = io.stderr, -- as before the toolkit (import_spec reads the help there)
}

local function parse(args)
  local o = cli.parse(args, SPEC)
  local known = false
  for _, n in ipairs(rn.backbone_archs()) do known = known or n == o.arch end
  if not known then
    local _, near = cli.nearest(o.arch, rn.backbone_archs())
    cli.usage_error(SPEC, "unknown architecture '" .. o.arch .. "'" ..
                          (near and (" (did you mean " .. near .. "?)") or ""))
  end
  if not rn.file_type(o.file) then
    io.stderr:write("realnet import: cannot open ", o.file, "\n")
    os.exit(1)
  end
  return o
end

local function fail(msg)
  io.stderr:write("realnet import: ", tostring(msg):gsub("^[^\n]-:%d+: ", ""), "\n")
  os.exit(1)
end

--- Runs the import; returns the report table {loaded, ignored, unmapped, stages_ready, text} and the stages.
local function import(o)
  local bb <close> = rn.backbone(o.arch)
  local ok, report = pcall(bb.load, bb, o.file, { allow_unmapped = not o.strict })
  if not ok then fail(report) end
  local sd, names = bb:state_dict()
  if #names == 0 then fail("no tensor of " .. o.file .. " maps to " .. o.arch) end
  local f <close> = rn.h5.open(o.out, "w") -- committed at the end; an error discards it
  for _, n in ipairs(names) do f:write("/" .. n:gsub("%.", "/"), sd[n]) end
  local ready = {}
  for _, s in ipairs(bb:stages()) do if s.ready then ready[#ready + 1] = s.name end end
  f:set_attr("content", "realnet.backbone")
  f:set_attr("arch", o.arch)
  f:set_attr("source", o.file)
  f:set_attr("stages", table.concat(ready, ","))
  f:set_attr("unmapped", report.unmapped)
  f:commit()
  return report, bb:stages(), #names
end

local o = parse(arg or {})
local ok, report, stages, n = pcall(import, o)
if not ok then fail(report) end
if not o.quiet then
  print(report.text)
  local parts = {}
  for _, s in ipairs(stages) do parts[#parts + 1] = s.name .. (s.ready and "" or " (absent)") end
  print(string.format("wrote %s: %d tensors for %s; stages %s", o.out, n, o.arch, table.concat(parts, ", ")))
end
if report.unmapped > 0 then
  io.stderr:write(string.format("realnet import: %d source tensors could not be mapped (listed above)\n",
                                report.unmapped))
end
