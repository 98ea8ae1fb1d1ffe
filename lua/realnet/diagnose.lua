--- realnet.diagnose: where a trained RealNet loses its image AUROC. For each category of a run's test split
-- it scores every image three ways and reports the image AUROC of each, overall and per defect type:
--
--   disc         the model's image score (max of the average-pooled anomaly map, as `realnet eval`)
--   residual_B   the reconstruction residual alone: mean over channels of (x - recon(x))^2 in block B,
--                average-pooled like the map, maximum over positions
--   knn_L        no learned part at all: the distance of each position's AFS-selected features at level L to
--                the nearest feature of a bank of normal training features, maximum over positions
--
-- If knn_L is high where residual_B and disc are low, the selected features hold the signal and the
-- reconstruction (or discriminator) loses it; if knn_L is low too, the backbone or the channel selection does.
--
--   local diagnose = require "realnet.diagnose"
--   local rep = diagnose.run("runs/mt", {bank_images = 256, bank_patches = 65536})
--   print(rep.markdown)
--
-- The bank: the first bank_images training images (dataset order), their feature positions subsampled at
-- random (seeded) to at most bank_patches rows per level, which bounds the nearest-neighbour cost.
local core = require "realnet.core"
local config = require "realnet.config"
local metrics = require "realnet.metrics"
local predictor = require "realnet.predictor"
local rundir = require "realnet.rundir"
local trainer = require "realnet.trainer"
local pc = require "realnet.patchcore"

local M = {}

-- [B,C,H,W] -> [B*H*W, C] rows, and H*W
local function rows_of(t)
  local s = t:shape()
  return t:permute({1, 3, 4, 2}):contiguous():view({s[1] * s[3] * s[4], s[2]}), s[3] * s[4]
end

-- At most n rows of x, chosen without replacement by a seeded shuffle.
local function subsample(x, n, seed)
  local N = x:shape()[1]
  if N <= n then return x end
  local gen = core.generator(seed, 0)
  local idx = {}
  for i = 1, N do idx[i] = i end
  for i = 1, n do
    local j = i + math.floor(gen:random() * (N - i + 1))
    idx[i], idx[j] = idx[j], idx[i]
  end
  return core.index_select(x, 1, core.tensor(table.move(idx, 1, n, 1, {})))
end

-- Per level, a bank [<= bank_patches, C] of selected features of the first bank_images training images.
local function build_bank(model, cfg, category, S, opts)
  local ds <close> = trainer.open_split(cfg, category, "train", S)
  local parts, seen = {}, 0
  for b in ds:batches{batch = 8} do
    if seen >= opts.bank_images then break end
    local x = b.images
    local take = math.min(x:shape()[1], opts.bank_images - seen)
    if take < x:shape()[1] then x = x:narrow(1, 1, take) end
    seen = seen + take
    local sel = core.no_grad(function() return model.afs(model:extract(x)) end)
    for l, f in ipairs(sel) do
      parts[l] = parts[l] or {}
      parts[l][#parts[l] + 1] = (rows_of(f))
    end
  end
  if seen == 0 then error(("diagnose: no training images for %s (the nearest-neighbour bank)"):format(category), 0) end
  local bank = {}
  for l, p in ipairs(parts) do bank[l] = subsample(core.cat(p, 1), opts.bank_patches, opts.seed + l) end
  return bank, seen
end

-- Pooled maximum per image of maps [B,1,h,w] with a k x k stride-1 average pool.
local function pooled_max(m, k)
  local s = m:shape()
  k = math.max(1, math.min(k, s[3], s[4]))
  return core.avg_pool2d(m, k, {stride = 1}):max({2, 3, 4}):totable()
end

-- Scores of every test image of one category: a list of {defect, label, scores = {name = value}}.
-- The model is in eval mode (predictor.open), so RRS and the discriminator use running statistics.
local function score_test(pred, cfg, category, bank)
  local model, S = pred.model, pred.image_size
  local ds <close> = trainer.open_split(cfg, category, "test", S)
  if #ds == 0 then error(("diagnose: no test images for %s"):format(category), 0) end
  local out = {}
  for b in ds:batches{batch = 8} do
    local labels = metrics.image_labels(b.masks):totable()
    local B = b.images:shape()[1]
    local per = {}
    core.no_grad(function() -- one backbone and reconstruction pass serves all three scores
      local sel = model.afs(model:extract(b.images))
      local blocks = model:align(sel)
      local logits, recon = model:head(blocks, false)
      per.disc = select(2, model:maps_and_scores(logits)):totable()
      for i, x in ipairs(blocks) do
        local k = math.floor(model.score_pool * model.blocks[i].side / S + 0.5)
        per["residual_" .. i] = pooled_max((x - recon[i]):square():mean({2}, true), k)
      end
      for l, f in ipairs(sel) do
        local q, hw = rows_of(f)
        local d = pc.knn(q, bank[l], 1)
        per["knn_" .. l] = d:view({B, hw}):max({2}):totable()
      end
    end)
    for j = 1, B do
      local s = {}
      for name, v in pairs(per) do s[name] = v[j] end
      out[#out + 1] = {defect = b.defects[j], label = math.tointeger(labels[j]), scores = s}
    end
  end
  return out
end

-- The score names in report order.
local function score_names(model, levels)
  local names = {"disc"}
  for i = 1, #model.blocks do names[#names + 1] = "residual_" .. i end
  for l = 1, levels do names[#names + 1] = "knn_" .. l end
  return names
end

-- AUROC of one score over items (nil when one class is missing).
local function auroc_of(items, name)
  local s, y, pos, neg = {}, {}, 0, 0
  for i, it in ipairs(items) do
    s[i], y[i] = it.scores[name], it.label
    if it.label > 0 then pos = pos + 1 else neg = neg + 1 end
  end
  if pos == 0 or neg == 0 then return nil end
  return metrics.auroc(s, y)
end

--- run(dir, opts{bank_images = 256, bank_patches = 65536, seed = 0, data, log = print}) -> report
-- {rows = {{category, score, all, <defect> = auroc...}}, columns, markdown}. Writes RUNDIR/diagnose.csv.
function M.run(dir, opts)
  opts = opts or {}
  local log = opts.log or print
  opts = {bank_images = opts.bank_images or 256, bank_patches = opts.bank_patches or 65536, seed = opts.seed or 0,
          data = opts.data}
  local run, err = rundir.open(dir)
  if not run then error(("%s is not a run directory (%s)"):format(dir, err), 0) end
  local cfg, cerr = config.load(run:path("config.lua"))
  if not cfg then error(("%s has no readable config.lua: %s"):format(dir, cerr), 0) end
  if opts.data then cfg.data.root = opts.data end
  local pred = predictor.open(dir)
  if pred.method ~= "realnet" then
    error(("diagnose: %s is a %s model; diagnose looks inside RealNet's reconstruction"):format(dir, pred.method), 0)
  end
  local rows, defects, seen_defect = {}, {}, {}
  local names
  for _, cat in ipairs(trainer.categories(cfg)) do
    local bank, n = build_bank(pred.model, cfg, cat, pred.image_size, opts)
    local sizes = {}
    for l, x in ipairs(bank) do sizes[l] = x:shape()[1] end
    log(("%s: a bank of %d training images, %s feature rows per level"):format(cat, n, table.concat(sizes, "/")))
    local items = score_test(pred, cfg, cat, bank)
    names = score_names(pred.model, #bank)
    local mine = {} -- this category's defect types with anomalous images
    for _, it in ipairs(items) do
      if it.label > 0 and not mine[it.defect] then
        mine[it.defect] = true
        if not seen_defect[it.defect] then seen_defect[it.defect] = true; defects[#defects + 1] = it.defect end
      end
    end
    for _, name in ipairs(names) do
      local r = {category = cat, score = name, all = auroc_of(items, name)}
      for d in pairs(mine) do -- this defect's anomalous images against every normal one
        local sub = {}
        for _, it in ipairs(items) do
          if it.label == 0 or it.defect == d then sub[#sub + 1] = it end
        end
        r[d] = auroc_of(sub, name)
      end
      rows[#rows + 1] = r
    end
  end
  table.sort(defects)
  local columns = {"category", "score", "all"}
  for _, d in ipairs(defects) do columns[#columns + 1] = d end
  local function fmt(v) return type(v) == "number" and ("%.4f"):format(v) or (v == nil and "-" or tostring(v)) end
  local lines = {"| " .. table.concat(columns, " | ") .. " |", "|" .. ("---|"):rep(#columns)}
  for _, r in ipairs(rows) do
    local cells = {}
    for i, c in ipairs(columns) do cells[i] = fmt(r[c]) end
    lines[#lines + 1] = "| " .. table.concat(cells, " | ") .. " |"
  end
  local csv_rows = {}
  for i, r in ipairs(rows) do
    local t = {}
    for _, c in ipairs(columns) do t[c] = r[c] ~= nil and (type(r[c]) == "number" and ("%.6f"):format(r[c]) or r[c]) or "" end
    csv_rows[i] = t
  end
  rundir.write_csv(run:path("diagnose.csv"), columns, csv_rows)
  return {rows = rows, columns = columns, markdown = table.concat(lines, "\n") .. "\n"}
end

return M
