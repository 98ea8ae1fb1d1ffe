--- realnet.sdas.grid: diffusion images ([-1, 1] float32 [N, 3, H, W]) to uint8 and preview grids.
--
--   local grid = require "realnet.sdas.grid"
--   local u8 = grid.to_u8(x)                       -- uint8 [N, H, W, 3]
--   grid.write(path, {x_s0, x_s01, x_s02})         -- one row per tensor (e.g. rising s), white gaps
local core = require "realnet.core"

local sc = core.synth_core
local M = {}

--- [-1, 1] float32 [N, 3, H, W] -> uint8 [N, H, W, 3] (clipped, rounded).
function M.to_u8(x) return sc.from_chw((x + 1) * 0.5, "unit") end

--- A grid image uint8 [R H + (R-1) gap, C W + (C-1) gap, 3] from rows (a list of [C, 3, H, W] tensors in
-- [-1, 1], all of one shape); gaps are white.
function M.image(rows, gap)
  gap = gap or 2
  if #rows == 0 then error("sdas.grid: no rows", 2) end
  local s = rows[1]:shape()
  local C, H, W = s[1], s[3], s[4]
  local parts = {}
  for r, x in ipairs(rows) do
    local xs = x:shape()
    if xs[1] ~= C or xs[3] ~= H or xs[4] ~= W then error("sdas.grid: rows differ in shape", 2) end
    local cols = {}
    for c = 1, C do
      if c > 1 and gap > 0 then cols[#cols + 1] = core.ones({3, H, gap}) end
      cols[#cols + 1] = x:narrow(1, c, 1):reshape({3, H, W}):to("cpu")
    end
    if r > 1 and gap > 0 then parts[#parts + 1] = core.ones({3, gap, C * W + (C - 1) * gap}) end
    parts[#parts + 1] = core.cat(cols, 3)
  end
  local g = core.cat(parts, 2)
  local gs = g:shape()
  return M.to_u8(g:reshape({1, 3, gs[2], gs[3]})):reshape({gs[2], gs[3], 3})
end

--- Writes the grid of rows as a PNG (atomic); returns the path.
function M.write(path, rows, gap)
  core.image.write_png(path, M.image(rows, gap))
  return path
end

return M
