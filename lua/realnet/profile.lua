--- realnet.profile: where the time of a forward pass goes, per module class and per named function.
--
--   local profile = require "realnet.profile"
--   local rows = profile.run(function() model:forward(x) end, {
--     modules = model,                                   -- every module class under it is timed
--     functions = {{Model, "extract", "backbone"}},      -- and these functions, under a label
--     sync = function() rn.cuda.synchronize() end,       -- wait for the device at each boundary
--   })
--   print(profile.format(rows))
--
-- Each timed call waits for the device before and after (sync), so device time lands on the call that queued
-- the work; that serialises the pipeline, so totals are higher than an unprofiled run. self_ms excludes the
-- timed calls nested inside; the wrappers are removed when fn returns or raises.
local core = require "realnet.core"

local M = {}

-- every distinct module class under root (root included), each once
local function module_classes(root, out, seen)
  local cls = getmetatable(root)
  if cls and not seen[cls] then
    seen[cls] = true
    out[#out + 1] = cls
  end
  for _, name in ipairs(root._children or {}) do module_classes(root[name], out, seen) end
  return out
end

--- run(fn, opts{modules, functions = {{table, key, label}...}, sync, repeats = 1, shapes = false}) -> rows
-- sorted by self time: {label, calls, total_ms, self_ms} per label, times per repeat of fn. shapes: leaf modules
-- (no children) are labelled with their extra_repr too, e.g. "Conv2d(512, 512, kernel {3,3}, padding 1)".
function M.run(fn, opts)
  local sync = opts.sync or function() end
  local stats, stack, patched = {}, {{child = 0}}, {}
  local function wrap(tbl, key, name, by_shape)
    local own, orig = rawget(tbl, key), tbl[key]
    if type(orig) ~= "function" then error(("profile: %s is not a function"):format(name), 3) end
    patched[#patched + 1] = {tbl, key, own}
    tbl[key] = function(...)
      local label = name
      if by_shape then
        local m = ...
        if #m._children == 0 then label = ("%s(%s)"):format(name, m:extra_repr() or "") end
      end
      sync()
      local frame = {child = 0, t0 = core.now()}
      stack[#stack + 1] = frame
      local r = table.pack(pcall(orig, ...))
      sync()
      local dt = core.now() - frame.t0
      stack[#stack] = nil
      local s = stats[label]
      if not s then
        s = {label = label, calls = 0, total = 0, self = 0}
        stats[label] = s
      end
      s.calls, s.total, s.self = s.calls + 1, s.total + dt, s.self + dt - frame.child
      local parent = stack[#stack]
      parent.child = parent.child + dt
      if not r[1] then error(r[2], 0) end
      return table.unpack(r, 2, r.n)
    end
  end
  for _, cls in ipairs(opts.modules and module_classes(opts.modules, {}, {}) or {}) do
    wrap(cls, "forward", cls.__name or "?", opts.shapes)
  end
  for _, f in ipairs(opts.functions or {}) do wrap(f[1], f[2], f[3]) end
  local repeats = opts.repeats or 1
  local t0 = core.now()
  local ok, err = pcall(function()
    for _ = 1, repeats do fn() end
    sync()
  end)
  local wall = core.now() - t0
  for i = #patched, 1, -1 do
    local p = patched[i]
    rawset(p[1], p[2], p[3])
  end
  if not ok then error(err, 0) end
  local rows = {}
  for _, s in pairs(stats) do
    rows[#rows + 1] = {label = s.label, calls = s.calls / repeats, total_ms = s.total / repeats * 1e3,
                       self_ms = s.self / repeats * 1e3}
  end
  table.sort(rows, function(a, b) return a.self_ms > b.self_ms end)
  rows.wall_ms = wall / repeats * 1e3
  return rows
end

--- A table of rows: label, calls, self ms, total ms, share of the wall time.
function M.format(rows)
  local w = 28
  for _, r in ipairs(rows) do w = math.max(w, #r.label) end
  local out = {("%-" .. w .. "s %7s %10s %10s %6s"):format("label", "calls", "self ms", "total ms", "self%")}
  for _, r in ipairs(rows) do
    out[#out + 1] = ("%-" .. w .. "s %7g %10.2f %10.2f %5.1f%%"):format(r.label, r.calls, r.self_ms, r.total_ms,
      100 * r.self_ms / rows.wall_ms)
  end
  out[#out + 1] = ("wall %.2f ms per repeat (timed calls wait for the device at entry and exit)"):format(rows.wall_ms)
  return table.concat(out, "\n")
end

return M
