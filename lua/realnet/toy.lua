--- realnet.toy: small generated data sets for demos and tests.
local core = require "realnet.core"

local M = {}

--- two_class_images(n, opts{size = 12, channels = 1, noise = 0.3, seed = 0})
-- Class 1 images hold a bright horizontal bar, class 2 a vertical bar, at random positions, plus Gaussian
-- noise. Returns images float32 [n, C, size, size] and labels int64 [n] (classes 1 and 2, alternating).
function M.two_class_images(n, opts)
  opts = opts or {}
  local size, channels, noise = opts.size or 12, opts.channels or 1, opts.noise or 0.3
  if math.type(n) ~= "integer" or n < 1 then error("two_class_images: n must be a positive integer", 2) end
  if math.type(size) ~= "integer" or size < 4 then error("two_class_images: opts.size must be an integer >= 4", 2) end
  local g = core.generator(opts.seed or 0, 0)
  local imgs, labels = {}, {}
  for i = 1, n do
    local cls = (i - 1) % 2 + 1
    local at = g:int(1, size)
    local img = {}
    for c = 1, channels do
      local plane = {}
      for y = 1, size do
        local row = {}
        for x = 1, size do
          local on = (cls == 1 and y == at) or (cls == 2 and x == at)
          row[x] = on and 1.0 or 0.0
        end
        plane[y] = row
      end
      img[c] = plane
    end
    imgs[i] = img
    labels[i] = cls
  end
  local x = core.tensor(imgs)
  if noise > 0 then x = x + g:randn({ n, channels, size, size }) * noise end
  return x, core.tensor(labels, { dtype = "int64" })
end

return M
