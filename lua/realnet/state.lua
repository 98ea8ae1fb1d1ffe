--- realnet.state: saving and loading named tensors (module weights, checkpoints) as HDF5.
--
--   rn.save("model.h5", net)                              -- parameters and buffers by dotted name
--   local report = rn.state.load_into("model.h5", net)    -- raises listing missing/extra/mis-shaped names
--
-- Layout: dotted names become groups under /model ("recon.1.in_conv.weight" -> /model/recon/1/in_conv/weight);
-- the root carries format_version (written by the store) and content = "realnet.state". Files are written to
-- a temporary name and renamed, so a crash never leaves a half-written file. Files of the interim RNSTATE1
-- format (before HDF5) are still read.
local core = require "realnet.core"

local M = {}

M.GROUP = "/model"
local HDF5_MAGIC, INTERIM_MAGIC = "\137HDF\r\n\26\n", "RNSTATE1"

local function to_path(name) return M.GROUP .. "/" .. name:gsub("%.", "/") end

--- save(path, module | {name = tensor}, opts{attrs = {key = number | string}})
function M.save(path, what, opts)
  if type(path) ~= "string" then error("save: path must be a string, got " .. type(path), 2) end
  local sd = what
  if type(what) == "table" and type(what.state_dict) == "function" then sd = what:state_dict() end
  if type(sd) ~= "table" then error("save: expected a module or a table of tensors, got " .. type(what), 2) end
  local names = {}
  for k in pairs(sd) do
    if type(k) ~= "string" then error("save: tensor names must be strings, got " .. type(k), 2) end
    if not core.is_tensor(sd[k]) then error("save: '" .. k .. "' is not a tensor", 2) end
    if k:find("/", 1, true) or k:find("..", 1, true) or k:match("^%.") or k:match("%.$") or k == "" then
      error("save: bad tensor name '" .. k .. "' (dotted names without '/' or empty parts)", 2)
    end
    names[#names + 1] = k
  end
  table.sort(names)
  local ok, f = pcall(core.h5.open, path, "w")
  if not ok then error("save: cannot write " .. path .. ": " .. tostring(f), 2) end
  local done, err = pcall(function()
    for _, k in ipairs(names) do f:write(to_path(k), sd[k]) end
    f:set_attr("content", "realnet.state")
    for k, v in pairs(opts and opts.attrs or {}) do f:set_attr(k, v) end
  end)
  if not done then
    f:discard()
    error("save: writing " .. path .. " failed: " .. tostring(err), 2)
  end
  f:commit()
end

local function sniff(path)
  local fh, err = io.open(path, "rb")
  if not fh then return nil, err end
  local head = fh:read(8) or ""
  fh:close()
  return head
end

--- load(path) -> {name = tensor}, {names sorted}, root attributes; nil, message when the file cannot be opened.
function M.load(path)
  if type(path) ~= "string" then error("load: path must be a string, got " .. type(path), 2) end
  local head, err = sniff(path)
  if not head then return nil, "cannot open " .. tostring(err) end
  if head == INTERIM_MAGIC then return core.load_tensors(path) end
  if head ~= HDF5_MAGIC then
    error("load: " .. path .. " is not a realnet state file (neither HDF5 nor the interim RNSTATE1 format)", 2)
  end
  local ok, f, msg = pcall(core.h5.open, path, "r")
  if not ok then error("load: " .. tostring(f), 2) end
  if not f then return nil, msg end
  local sd, names, pre = {}, {}, M.GROUP .. "/"
  local done, e = pcall(function()
    for _, full in ipairs(f:list()) do
      if full:sub(1, #pre) == pre then
        local name = full:sub(#pre + 1):gsub("/", ".")
        sd[name] = f:read(full)
        names[#names + 1] = name
      end
    end
  end)
  local attrs = done and f:attrs() or nil
  f:close()
  if not done then error("load: " .. tostring(e), 2) end
  table.sort(names)
  return sd, names, attrs
end

--- load_into(path, module, opts{strict = true}) -> report {missing, extra, mismatched}
function M.load_into(path, model, opts)
  local sd, err = M.load(path)
  if not sd then error("load: " .. err, 2) end
  return model:load_state_dict(sd, opts)
end

return M
