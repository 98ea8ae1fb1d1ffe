--- realnet.sdas.warmstart: initialising a diffusion U-Net from a pretrained checkpoint by tensor name and shape
-- (spec 11.1, "ImageNet initialisation"), e.g. OpenAI's 256x256_diffusion.pt converted to safetensors.
--
--   local ws = require "realnet.sdas.warmstart"
--   local report = ws.apply(net, "256x256_diffusion.safetensors")
--   print(ws.describe(report))    -- loaded / re-initialised (shape differs) / missing / unused
--
-- Sources: a .safetensors file (read lazily, so a 2 GB file costs only the tensors used), or an HDF5 state file
-- (`realnet import --arch guided-diffusion` output, an sdas model.h5, or an sdas checkpoint, whose EMA weights
-- are used). "module." prefixes (DataParallel) are stripped. Tensors whose shape differs from the model's (the
-- class embedding: 1000 ImageNet classes vs. the dataset's categories) keep the model's fresh initialisation,
-- as the authors' load_pertrain_weights does.
local core = require "realnet.core"
local state = require "realnet.state"

local M = {}

local HDF5_MAGIC = "\137HDF\r\n\26\n"

local function shape_str(s) return "[" .. table.concat(s, ",") .. "]" end

local function head(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local h = f:read(8) or ""
  f:close()
  return h
end

--- open(path) -> source {names = {...}, shape(name) -> list, load(name) -> tensor, kind, close()}; raises with
-- a clear message for a missing or unreadable file.
function M.open(path)
  if type(path) ~= "string" or path == "" then error("warm start: no file given", 2) end
  local h = head(path)
  if not h then error(("warm start: cannot open %s"):format(path), 0) end
  local src = {path = path, map = {}, names = {}}
  if h == HDF5_MAGIC then
    local ok, sd, err = pcall(state.load, path)
    if not ok or not sd then error(("warm start: cannot read %s: %s"):format(path, tostring(sd or err)), 0) end
    -- an sdas checkpoint holds model.* and ema.*: start from the averaged weights
    local any_ema = false
    for n in pairs(sd) do if n:match("^ema%.") then any_ema = true; break end end
    local tensors = {}
    for n, t in pairs(sd) do
      if any_ema then
        local rest = n:match("^ema%.(.+)$")
        if rest then tensors[rest] = t end
      else
        tensors[(n:gsub("^module%.", ""))] = t
      end
    end
    src.kind = "hdf5"
    function src.shape(name) return tensors[name]:shape() end
    function src.load(name) return tensors[name] end
    function src.close() end
    for n in pairs(tensors) do src.names[#src.names + 1] = n end
  else
    local set, err = core.tensorset(path)
    if not set then error(("warm start: cannot open %s: %s"):format(path, tostring(err)), 0) end
    local byname = {}
    for _, raw in ipairs(set:names()) do byname[(raw:gsub("^module%.", ""))] = raw end
    src.kind = "safetensors"
    function src.shape(name) local _, s = set:info(byname[name]); return s end
    function src.load(name) return set:load(byname[name]) end
    function src.close() set:close() end
    for n in pairs(byname) do src.names[#src.names + 1] = n end
  end
  table.sort(src.names)
  src.set = {}
  for _, n in ipairs(src.names) do src.set[n] = true end
  return src
end

--- apply(net, path | source) -> report {file, loaded, mismatched = {{name, model, file}}, missing = {...},
-- unused = {...}}. Copies every tensor whose name and shape match; the rest keep the net's initialisation.
-- Raises when nothing at all matches (the file is not a diffusion U-Net of this layout).
function M.apply(net, path)
  local src = type(path) == "table" and path or M.open(path)
  local own, names = net:state_dict()
  local report = {file = src.path, loaded = 0, mismatched = {}, missing = {}, unused = {}}
  core.no_grad(function()
    for _, n in ipairs(names) do
      if not src.set[n] then
        report.missing[#report.missing + 1] = n
      else
        local fs, ms = src.shape(n), own[n]:shape()
        if shape_str(fs) ~= shape_str(ms) then
          report.mismatched[#report.mismatched + 1] = {name = n, model = ms, file = fs}
        else
          own[n]:copy_(src.load(n):to(own[n]:device()))
          report.loaded = report.loaded + 1
        end
      end
    end
  end)
  for _, n in ipairs(src.names) do
    if own[n] == nil then report.unused[#report.unused + 1] = n end
  end
  if type(path) ~= "table" then src.close() end
  if report.loaded == 0 then
    error(("warm start: no tensor of %s matches the U-Net by name and shape (%d in the file, %d in the model; "
      .. "is it a guided-diffusion checkpoint converted to safetensors?)"):format(tostring(src.path), #src.names,
      #names), 0)
  end
  return report
end

--- A readable multi-line summary of a report: counts, then every re-initialised and missing tensor, and the
-- unused ones (at most 20 named).
function M.describe(r)
  local lines = {("warm start from %s: %d tensors loaded, %d re-initialised (shape differs), %d missing in the "
    .. "file, %d in the file unused"):format(r.file, r.loaded, #r.mismatched, #r.missing, #r.unused)}
  for _, m in ipairs(r.mismatched) do
    lines[#lines + 1] = ("  re-initialised %s: model %s, file %s"):format(m.name, shape_str(m.model), shape_str(m.file))
  end
  for _, n in ipairs(r.missing) do lines[#lines + 1] = "  missing (initialised fresh) " .. n end
  for i, n in ipairs(r.unused) do
    if i > 20 then lines[#lines + 1] = ("  ... and %d more unused"):format(#r.unused - 20); break end
    lines[#lines + 1] = "  unused " .. n
  end
  return table.concat(lines, "\n")
end

return M
