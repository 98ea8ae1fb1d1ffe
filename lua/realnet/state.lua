--- realnet.state: saving and loading named tensors (interim single-file format until HDF5 arrives).
--
--   rn.save("model.rns", net)                       -- parameters and buffers by dotted name
--   local report = rn.state.load_into("model.rns", net)  -- raises listing missing/extra/mis-shaped names
local core = require "realnet.core"

local M = {}

--- save(path, module | {name = tensor}): written to a temporary file and renamed, so never half-written.
function M.save(path, what)
  if type(path) ~= "string" then error("save: path must be a string, got " .. type(path), 2) end
  local sd = what
  if type(what) == "table" and type(what.state_dict) == "function" then sd = what:state_dict() end
  if type(sd) ~= "table" then error("save: expected a module or a table of tensors, got " .. type(what), 2) end
  local names, tensors = {}, {}
  for k in pairs(sd) do
    if type(k) ~= "string" then error("save: tensor names must be strings, got " .. type(k), 2) end
    if not core.is_tensor(sd[k]) then error("save: '" .. k .. "' is not a tensor", 2) end
    names[#names + 1] = k
  end
  table.sort(names)
  for i, k in ipairs(names) do tensors[i] = sd[k] end
  core.save_tensors(path, names, tensors)
end

--- load(path) -> {name = tensor}, {names in file order}; nil, message when the file cannot be opened.
function M.load(path) return core.load_tensors(path) end

--- load_into(path, module, opts{strict = true}) -> report {missing, extra, mismatched}
function M.load_into(path, model, opts)
  local sd, err = core.load_tensors(path)
  if not sd then error("load: " .. err, 2) end
  return model:load_state_dict(sd, opts)
end

return M
