--- realnet.device: the `--device cpu|cuda[:N]` choice of the commands. resolve() checks it once, before any
-- work (no CUDA build or no GPU: a clear error); the helpers move models, backbones and batches there and bring
-- results back to the host for metrics, maps and PNGs.
local core = require "realnet.core"

local M = {}

--- "cpu" | "cuda" | "cuda:N" (nil or "" -> "cpu") -> the canonical name; raises (level 0) naming why not usable.
function M.resolve(name)
  if name == nil or name == "" then return "cpu" end
  if type(name) ~= "string" then error(("device must be a string (cpu, cuda, cuda:N), not %s"):format(type(name)), 0) end
  local ok, d = pcall(core.device, name)
  if not ok then
    local msg = tostring(d):gsub("^[^\n]-:%d+: ", ""):gsub("^bad argument #1 to '[^']*' %((.*)%)$", "%1")
    error(("device %s is not usable: %s"):format(name, msg), 0)
  end
  return d
end

--- t on dev (t itself when already there or when t/dev is nil).
function M.to(t, dev)
  if t == nil or dev == nil or t:device() == dev then return t end
  return t:to(dev)
end

--- t on the host.
function M.host(t) return M.to(t, "cpu") end

--- A RealNet model (its frozen backbone and its trainable parts) moved to dev; call before the optimiser.
function M.model(model, dev)
  if dev == nil or dev == "cpu" then return model end
  model.backbone:to(dev)
  model:to(dev)
  return model
end

--- parallel(dev, n, fn) -> {fn(1), ..., fn(n)} (each call's first result): the n calls are independent parts of
-- one computation (no call reads what another writes). On a CUDA device with lanes on (core.cuda.set_lanes(k)
-- or REALNET_CUDA_LANES=k, k >= 2) call i queues its work on lane (i - 1) % k + 1 of a fork, so their kernels run
-- side by side (inside a graph capture too); elsewhere, and with lanes off (the default), one after another.
-- Either way the results are the same. An error in a call still joins the lanes, then is raised.
function M.parallel(dev, n, fn)
  local out = {}
  local k = math.min(n, dev and dev:match("^cuda") and core.cuda.lanes() or 1)
  if k < 2 then
    for i = 1, n do out[i] = fn(i) end
    return out
  end
  core.cuda.fork(dev, k)
  local ok, err = pcall(function()
    for i = 1, n do
      core.cuda.lane(dev, (i - 1) % k + 1)
      out[i] = fn(i)
    end
  end)
  local jok, jerr = pcall(core.cuda.join, dev)
  if not ok then error(err, 0) end
  if not jok then error(jerr, 0) end
  return out
end

--- capture(fn, dev) -> graph, fn's results: runs fn with dev's work recorded into a CUDA graph (core.cuda
-- graph_begin / graph_end) instead of executed. graph:replay() runs the recorded work again on the same
-- tensors: refill the inputs fn read (copy_) before a replay and read the results fn returned after it. An
-- error in fn ends the capture and is raised as fn's error.
function M.capture(fn, dev)
  core.cuda.graph_begin(dev)
  local res = table.pack(pcall(fn))
  local ok, graph = pcall(core.cuda.graph_end, dev)
  if not res[1] then error(res[2], 0) end
  if not ok then error(graph, 0) end
  return graph, table.unpack(res, 2, res.n)
end

return M
