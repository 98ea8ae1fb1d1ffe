--- realnet.h5: the HDF5 tensor store. The file userdata (open, read, write, attrs, commit) is C
-- (lua/bind_h5.c); this adds the one-call forms.
--
--   rn.h5.save("feats.h5", {layer1 = f1, layer2 = f2}, {attrs = {seed = 1}, compress = 4})   -- atomic
--   local t, attrs = rn.h5.load("feats.h5")                        -- {layer1 = ..., layer2 = ...}, {seed = 1, ...}
--   local w = rn.h5.load("model.h5", {prefix = "/model", expect = {["conv/weight"] = {8, 3, 3, 3}}})
local core = require "realnet.core"

local M = {}
for k, v in pairs(core.h5) do M[k] = v end

local function check_path(path, fn)
  if type(path) ~= "string" then error(fn .. ": path must be a string, got " .. type(path), 3) end
end

--- Returns the results of a pcall, or raises its message (without the library's position) at the user's call.
local function rethrow(ok, ...)
  if ok then return ... end
  local msg = tostring((...)):gsub("^[^\n]-%.lua:%d+: ", "")
  error(msg, 3)
end

--- "/a/b" + "c" -> "/a/b/c"; nil or "/" prefix -> "/c".
local function join(prefix, name)
  prefix = (prefix or "/"):gsub("/+$", "")
  return prefix .. "/" .. name
end

--- save(path, {name = tensor, ...}, opts{prefix = "/", attrs = {key = number | string}, compress = level})
-- Writes a temporary file and renames it over `path`, so a crash leaves the old file or the whole new one.
function M.save(path, tensors, opts)
  check_path(path, "h5.save")
  if type(tensors) ~= "table" then error("h5.save: expected a table name -> tensor, got " .. type(tensors), 2) end
  opts = opts or {}
  local names = {}
  for k, t in pairs(tensors) do
    if type(k) ~= "string" then error("h5.save: tensor names must be strings, got " .. type(k), 2) end
    if not core.is_tensor(t) then error("h5.save: '" .. k .. "' is not a tensor", 2) end
    names[#names + 1] = k
  end
  table.sort(names)
  local f <close> = rethrow(pcall(core.h5.open, path, "w")) -- an error below discards the temporary file
  local wopts = opts.compress and { compress = opts.compress } or nil
  rethrow(pcall(function()
    for _, k in ipairs(names) do f:write(join(opts.prefix, k), tensors[k], wopts) end
    for k, v in pairs(opts.attrs or {}) do f:set_attr(k, v) end
    f:commit()
  end))
end

--- load(path, opts{prefix = "/", expect = {name = shape}, allow_extra = false}) -> {name = tensor}, root attrs
-- Without expect, every dataset under prefix is read (names relative to it, "a/b" for nested groups). With
-- expect, one error lists every missing, extra (unless allow_extra) and mis-shaped name; a shape table may
-- carry dtype = "uint8" etc. and -1 entries that match any size. A file that cannot be opened gives nil, msg.
function M.load(path, opts)
  check_path(path, "h5.load")
  opts = opts or {}
  local f <close>, err = rethrow(pcall(core.h5.open, path, "r"))
  if not f then return nil, err end
  return rethrow(pcall(function()
    local out = {}
    if opts.expect then
      out = f:load_set(opts.expect, { prefix = opts.prefix, allow_extra = opts.allow_extra })
    else
      local pre = (opts.prefix or "/"):gsub("^/*", "/"):gsub("/+$", "") .. "/"
      for _, name in ipairs(f:list()) do
        if name:sub(1, #pre) == pre then out[name:sub(#pre + 1)] = f:read(name) end
      end
    end
    return out, f:attrs()
  end))
end

return M
