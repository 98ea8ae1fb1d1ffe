-- Helpers shared by the Lua specs: flattening tensors, approximate comparison, error capture.
local rn = require "realnet"

local H = {}

--- All elements of a tensor as a flat Lua list (row-major).
function H.flat(t)
  local out = {}
  local function rec(v)
    if type(v) == "table" then for _, e in ipairs(v) do rec(e) end else out[#out + 1] = v end
  end
  rec(t:totable())
  return out
end

--- Largest |a - b| over two tensors (or a tensor and a nested table) of the same shape.
function H.maxdiff(a, b)
  local fa = H.flat(a)
  local fb = rn.is_tensor(b) and H.flat(b) or H.flat(rn.tensor(b))
  assert(#fa == #fb, ("element counts differ: %d vs %d"):format(#fa, #fb))
  local m = 0
  for i = 1, #fa do m = math.max(m, math.abs(fa[i] - fb[i])) end
  return m
end

--- The error message of f(...), or nil when it did not fail.
function H.err(f, ...)
  local ok, msg = pcall(f, ...)
  if ok then return nil end
  return tostring(msg)
end

return H
