--- realnet.sdas.strength: does the strength s move SDAS samples away from the normal images? (issue 6's check)
--
--   local strength = require "realnet.sdas.strength"
--   local r = strength.measure{rundir = "runs/sdas_mt", data = "../shared/data", category = "magnetic_tile",
--                              weights = "resnet50v2_imagenet_stages1-3.safetensors", strengths = {0, 0.1, 0.2, 0.4}}
--   -- r.rows = {{s = 0, mean = ..., median = ..., n = 64}, ...}
--
-- For each s, n images are sampled from the SAME noise (same seeds), so only s differs. Each generated image and
-- every normal training image (both at the diffusion model's resolution, the real ones resized the way the
-- model saw them in training) is upsampled to `res`, ImageNet-normalised and passed through a frozen backbone;
-- an image's feature is the global average of each chosen stage, concatenated. The figure per s is the mean
-- (and median) Euclidean distance from a generated image's feature to its nearest normal image's feature.
-- A model whose s works gives distances that grow with s; s = 0 is the baseline of plain sampling.
local core = require "realnet.core"
local rn_data = require "realnet.data"
local patchcore = require "realnet.patchcore"

local M = {}

local MEAN, STD = {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}

-- [B,3,h,w] in [0,1] -> backbone features [B, sum of stage channels].
local function features(bb, x01, res, stages)
  local x = core.upsample(x01, {size = res, mode = "bilinear"})
  local m = core.tensor(MEAN):reshape({1, 3, 1, 1})
  local s = core.tensor(STD):reshape({1, 3, 1, 1})
  x = (x - m) / s
  local f = bb:forward(x)
  local parts = {}
  for i, k in ipairs(stages) do parts[i] = f[k]:mean({3, 4}) end
  return #parts == 1 and parts[1] or core.cat(parts, 2)
end

local function median(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  local n = #t
  if n == 0 then return 0 / 0 end
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

--- measure(o{rundir, data, category, dataset = "mvtec", weights, arch = "resnet50v2", layers = {2, 3},
-- strengths = {0, 0.1, 0.2, 0.4}, n = 64, batch = 16, steps = 20, method = "ancestral", sigma, seed = 0,
-- res = 128, class, unet = "ema" | "raw" (which U-Net weights, as sdas sample's --weights), quiet}) -> {rows = {{s, mean, median, n}}, real = count, res, arch, layers}
function M.measure(o)
  local sample = require "realnet.sdas.sample"
  local sdas = require "realnet.sdas"
  local strengths = o.strengths or {0, 0.1, 0.2, 0.4}
  for _, s in ipairs(strengths) do sample.check_strength(s) end
  local n, batch = o.n or 64, o.batch or 16
  if math.type(n) ~= "integer" or n < 1 then error("n must be a positive integer", 0) end
  if not o.weights then
    error("the strength check needs real backbone weights (--weights FILE): random features say nothing", 0)
  end
  local run = sample.load_run(o.rundir, {weights = o.unet})
  local S = run.image_size
  local cls = o.class or run.classes[1]
  local class_id
  for i, c in ipairs(run.classes) do if c == cls then class_id = i end end
  if not class_id then error(("class '%s' is not one of the run's classes (%s)"):format(cls, table.concat(run.classes, ", ")), 0) end
  local category = o.category or (run.cfg.data and run.cfg.data.category ~= "all" and run.cfg.data.category) or cls
  local root = o.data or (run.cfg.data and run.cfg.data.root)
  if not root then error("no dataset root: pass --data DIR", 0) end

  local arch, layers = o.arch or "resnet50v2", o.layers or {2, 3}
  local bb = core.backbone(arch, {weights = o.weights, layers = layers})
  local stages = {}
  for i = 1, #layers do stages[i] = i end
  local res = o.res or 128

  -- normal images at the diffusion model's resolution, as it saw them
  local ds = rn_data.open(o.dataset or "mvtec", root, category, {split = "train", size = S, normalize = false})
  local real = {}
  for b in ds:batches{batch = batch, workers = 0} do
    real[#real + 1] = core.no_grad(function() return features(bb, b.images, res, stages) end)
  end
  if #real == 0 then error(("no normal training images in %s / %s"):format(root, category), 0) end
  local bank = core.cat(real, 1)
  local nreal = bank:shape()[1]

  local d = sdas.diffusion{steps = run.cfg.diffusion.steps, schedule = run.cfg.diffusion.schedule,
                           respace = "ddim" .. (o.steps or 20), learn_sigma = true}
  local cond = run.net.num_classes ~= nil
  local bar = not o.quiet and require("realnet.progress").new{total = n * #strengths, label = "strength", unit = "img"}
    or nil
  local rows, done = {}, 0
  for _, s in ipairs(strengths) do
    local dists = {}
    local made, k = 0, 0
    while made < n do
      local b = math.min(batch, n - made)
      k = k + 1
      local f = core.no_grad(function()
        local smp = sdas.sampler(run.net, {diffusion = d, strength = s, method = o.method, sigma = o.sigma,
                                           seed = (o.seed or 0) + k - 1})
        local x = smp:sample(b, {3, S, S}, {y = cond and core.full({b}, class_id, {dtype = "int64"}) or nil})
        return features(bb, (x:clamp(-1, 1) + 1) / 2, res, stages)
      end)
      local dist = patchcore.knn(f, bank, 1)
      for _, row in ipairs(dist:totable()) do dists[#dists + 1] = row[1] end
      made, done = made + b, done + b
      if bar then bar:update(done, nil, b) end
    end
    local sum = 0
    for _, v in ipairs(dists) do sum = sum + v end
    rows[#rows + 1] = {s = s, mean = sum / #dists, median = median(dists), n = #dists}
  end
  if bar then bar:finish() end
  return {rows = rows, real = nreal, res = res, arch = arch, layers = layers, image_size = S, class = cls,
          weights = run.weights, step = run.step, kind = run.kind}
end

--- The result as a Markdown table.
function M.table(r)
  local out = {("| s | mean NN feature distance | median | generated images |"), "|---|---|---|---|"}
  for _, row in ipairs(r.rows) do
    out[#out + 1] = ("| %g | %.4f | %.4f | %d |"):format(row.s, row.mean, row.median, row.n)
  end
  return table.concat(out, "\n")
end

return M
