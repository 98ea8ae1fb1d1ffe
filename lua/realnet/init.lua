--- realnet: tensors, autograd, nn modules and optimisers for Lua 5.4.
--
--   local rn = require "realnet"
--   local x = rn.randn({2, 3, 8, 8}, {seed = 1})
--   local net = rn.nn.Sequential(rn.nn.Conv2d(3, 8, 3, {padding = 1, seed = 1}), rn.nn.ReLU())
--   print(net(x))
--
-- Dims, indices, index tensors and class targets are 1-based (negative dims count from the end).
local core = require "realnet.core"

local M = {}
for k, v in pairs(core) do M[k] = v end

M.core = core
M.home = os.getenv("REALNET_HOME")
if not M.home then -- loaded by a stock lua5.4: lua/realnet/init.lua -> the tree root
  local path = package.searchpath("realnet", package.path) or ""
  M.home = path:match("^(.*)/lua/realnet/init%.lua$") or path:match("^(.*)/lua/realnet%.lua$")
end

-- Sub-modules require "realnet.core" (never "realnet"), so loading them here has no cycle.
M.nn = require "realnet.nn"
M.optim = require "realnet.optim"
M.state = require "realnet.state"
M.h5 = require "realnet.h5"
M.toy = require "realnet.toy"
M.data = require "realnet.data"
M.synth = require "realnet.synth"
M.metrics = require "realnet.metrics"
M.json = require "realnet.json"
M.cli = require "realnet.cli"
M.config = require "realnet.config"
M.progress = require "realnet.progress"
M.rundir = require "realnet.rundir"
M.patchcore = require "realnet.patchcore"
M.realnet = require "realnet.realnet"
M.trainer = require "realnet.trainer"
M.evaluator = require "realnet.evaluator"
M.predictor = require "realnet.predictor"
M.sdas = require "realnet.sdas"

--- A short readable form of a value (the REPL prints results with it): plain tables show their contents up to
-- a depth and a length; everything else uses tostring.
function M.format(v, depth)
  depth = depth or 2
  if type(v) ~= "table" or getmetatable(v) ~= nil then
    return type(v) == "string" and string.format("%q", v) or tostring(v)
  end
  if depth == 0 then return "{...}" end
  local parts, n = {}, 0
  for i, e in ipairs(v) do
    if i > 16 then parts[#parts + 1] = "..."; break end
    parts[#parts + 1] = M.format(e, depth - 1)
  end
  local keys = {}
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 or k > #v then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    n = n + 1
    if n > 16 then parts[#parts + 1] = "..."; break end
    local key = (type(k) == "string" and k:match("^[%a_][%w_]*$")) and k or ("[" .. M.format(k, 0) .. "]")
    parts[#parts + 1] = key .. " = " .. M.format(v[k], depth - 1)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

--- Saves a module's parameters and buffers (or a table name -> tensor) to `path`, atomically.
function M.save(path, what) return M.state.save(path, what) end
--- Loads a file written by rn.save: a table name -> tensor and the names in file order; nil, msg if unreadable.
function M.load(path) return M.state.load(path) end

return M
