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

local function usage(msg)
  if msg then io.stderr:write("realnet import: ", msg, "\n") end
  io.stderr:write("usage: realnet import FILE --arch NAME --out FILE.h5 [--strict] [--quiet]\n",
                  "  FILE: a .safetensors file, a folder of .npy files or an HDF5 store\n",
                  "  --arch: one of ", table.concat(rn.backbone_archs(), ", "), "\n",
                  "  --strict: fail when a source tensor cannot be mapped (default: list it and go on)\n")
  os.exit(msg and 2 or 0)
end

local function parse(args)
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--arch" or a == "--out" then
      if not args[i + 1] then usage(a .. " needs a value") end
      o[a:sub(3)] = args[i + 1]
      i = i + 1
    elseif a == "--strict" then
      o.strict = true
    elseif a == "--quiet" then
      o.quiet = true
    elseif a == "-h" or a == "--help" then
      usage()
    elseif a:sub(1, 1) == "-" then
      usage("unknown option " .. a)
    elseif o.file then
      usage("more than one input file (" .. o.file .. ", " .. a .. ")")
    else
      o.file = a
    end
    i = i + 1
  end
  if not o.file then usage("no input file") end
  if not o.arch then usage("--arch is required") end
  if not o.out then usage("--out is required") end
  local known = false
  for _, n in ipairs(rn.backbone_archs()) do known = known or n == o.arch end
  if not known then usage("unknown architecture '" .. o.arch .. "'") end
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
