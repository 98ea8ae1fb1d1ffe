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
--
-- `--arch guided-diffusion` takes a guided-diffusion (ADM) U-Net checkpoint, e.g. OpenAI's 256x256_diffusion.pt
-- converted to safetensors (see GD_HELP), keeps its tensor names (they are the engine's: rn.sdas.unet follows
-- guided-diffusion's state_dict), strips "module." prefixes, and writes an HDF5 state file for
-- `realnet sdas train --init FILE`, reporting the U-Net it describes (width, classes, output channels).
local rn = require "realnet"
local cli = require "realnet.cli"

local GD = "guided-diffusion"
local GD_HELP = "guided-diffusion checkpoints: convert the .pt once with PyTorch and safetensors, e.g.\n" ..
  "  python3 -c \"import torch,safetensors.torch as st; d=torch.load('256x256_diffusion.pt',map_location='cpu'); " ..
  "d=d.get('state_dict',d); st.save_file({k.replace('module.',''):v.float().contiguous() for k,v in d.items()}," ..
  "'256x256_diffusion.safetensors')\"\n" ..
  "then: realnet import 256x256_diffusion.safetensors --arch guided-diffusion --out adm256.h5\n" ..
  "      realnet sdas train ... --init adm256.h5   (or --init the .safetensors directly)"

local function archs()
  local list = rn.backbone_archs()
  list[#list + 1] = GD
  return list
end

local SPEC = {
  name = "import",
  usage = "FILE --arch NAME --out FILE.h5 [--strict] [--quiet]",
  summary = "FILE: a .safetensors file, a folder of .npy files or an HDF5 store",
  positional = {{"file", metavar = "FILE", required = true, missing = "no input file"}},
  too_many = function(pos) return ("more than one input file (%s, %s)"):format(pos[1], pos[2]) end,
  options = {
    {"--arch", required = true, help = "one of " .. table.concat(archs(), ", ")},
    {"--out", type = "path", metavar = "FILE.h5", required = true, help = "the HDF5 file to write"},
    {"--strict", type = "flag", help = "fail when a source tensor cannot be mapped (default: list it and go on)"},
    {"--quiet", type = "flag", help = "print nothing on success"},
  },
  epilog = GD_HELP .. "\nexit status: 0 done, 1 nothing usable or a write failure, 2 bad usage",
  help_stream = io.stderr, -- as before the toolkit (import_spec reads the help there)
}

local function parse(args)
  local o = cli.parse(args, SPEC)
  local known = false
  for _, n in ipairs(archs()) do known = known or n == o.arch end
  if not known then
    local _, near = cli.nearest(o.arch, archs())
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

--- A guided-diffusion U-Net checkpoint -> HDF5 state file (names kept); returns the printed summary lines.
local function import_gd(o)
  local ws = require "realnet.sdas.warmstart"
  local src = ws.open(o.file)
  local function shape(n) return src.set[n] and src.shape(n) or nil end
  local te, out, inp = shape("time_embed.0.weight"), shape("out.2.weight"), shape("input_blocks.0.0.weight")
  if not (te and out and inp) then
    src.close()
    fail(("%s is not a guided-diffusion U-Net checkpoint (no time_embed.0.weight / input_blocks.0.0.weight / "
      .. "out.2.weight among its %d tensors)"):format(o.file, #src.names))
  end
  local emb = shape("label_emb.weight")
  local summary = ("guided-diffusion U-Net: width %d, %d input channels, %d output channels%s, %d tensors"):format(
    te[2], inp[2], out[1], emb and (", %d classes"):format(emb[1]) or ", unconditional", #src.names)
  local f <close> = rn.h5.open(o.out, "w") -- committed at the end; an error discards it
  local params = 0
  for _, n in ipairs(src.names) do
    if n:find("/", 1, true) or n:find("..", 1, true) then error("bad tensor name '" .. n .. "' in " .. o.file) end
    local t = src.load(n)
    params = params + t:numel()
    f:write("/model/" .. n:gsub("%.", "/"), t)
  end
  f:set_attr("content", "realnet.state")
  f:set_attr("arch", GD)
  f:set_attr("source", o.file)
  f:set_attr("summary", summary)
  f:commit()
  src.close()
  return {summary, ("wrote %s: %d tensors (%.1f M values) for %s; use it with realnet sdas train --init %s"):format(
    o.out, #src.names, params / 1e6, GD, o.out)}
end

local o = parse(arg or {})
if o.arch == GD then
  local ok, lines = pcall(import_gd, o)
  if not ok then fail(lines) end
  if not o.quiet then print(table.concat(lines, "\n")) end
  os.exit(0)
end
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
