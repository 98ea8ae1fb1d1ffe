--- realnet.evaluator: `realnet eval RUNDIR` - the test-split metrics of a trained run and its output files.
--
--   local evaluator = require "realnet.evaluator"
--   local m = evaluator.run("runs/demo", {select = "last_epoch"})   -- m.image_auroc, m.categories.<cat>, ...
--
-- Writes into RUNDIR: metrics.json (mean metrics, per-category metrics, protocol flags), metrics.csv (one row
-- per category, and a mean row when there are several), scores.csv (one row per test image), float32 TIFF maps
-- at each image's original resolution in the MVTec evaluator layout anomaly_maps/<category>/test/<defect>/
-- <id>.tiff, and PNG overlays images/<category>/<defect>_<id>.png (image | ground truth | heat map | contour of
-- map >= the image threshold). Metrics are computed at the model's input size (masks resized nearest, as the
-- data readers do); AU-PRO is the MVTec definition, RealNet's PRO variant is reported beside it as
-- pro_realnet. AUROC below 0.5 is reported as it is, with a warning.
--
-- Model selection: "last_epoch" (default) uses model.h5; "best_on_test" evaluates every stored per-epoch
-- checkpoint on the test set, keeps the best mean of image and pixel AUROC (the later epoch on ties, as the
-- paper's code), recomputes the threshold on the held-out normal images, and says so in a banner and in
-- metrics.json. A run of several categories (trained with --category all) is evaluated category by category.
-- The library's pieces by name (not require "realnet": init.lua loads this module, so that would be a cycle).
local core = require "realnet.core"
local rn = setmetatable({data = require "realnet.data", synth = require "realnet.synth",
  realnet = require "realnet.realnet", patchcore = require "realnet.patchcore", metrics = require "realnet.metrics",
  state = require "realnet.state", h5 = require "realnet.h5", optim = require "realnet.optim"}, {__index = core})
local config = require "realnet.config"
local rundir = require "realnet.rundir"
local trainer = require "realnet.trainer"
local predictor = require "realnet.predictor"
local device = require "realnet.device"

local image = core.image
local M = {}

M.PRO_DEFINITION = "mvtec: 8-connected regions, exact curve, trapezoid to FPR 0.3 divided by 0.3"
M.PRO_VARIANT = "realnet (spec 10.1): 1000 thresholds, hole-filled regions, min-max rescaled FPR; comparison only"

local BANNER = [[
==============================================================================================
 PROTOCOL: best_on_test - the checkpoint was chosen on the TEST set (best mean of image and
 pixel AUROC), as the RealNet paper does. These figures are optimistic; the default protocol
 (the last epoch, threshold from held-out normal training images) does not look at the test set.
==============================================================================================]]

local function clean(msg) return (tostring(msg):gsub("^[^\n]-%.lua:%d+: ", "")) end

--- Scores, maps [N,S,S], masks [N,S,S] and items {path, defect, label} of a category's test split.
function M.score_category(pred, cfg, category, opts)
  local S = pred.image_size
  local ds <close> = trainer.open_split(cfg, category, "test", S)
  if #ds == 0 then error(("no test images for %s under %s"):format(category, cfg.data.root), 0) end
  local scores, maps, masks, items = {}, {}, {}, {}
  local workers = cfg.data.workers >= 0 and cfg.data.workers or nil
  for b in ds:batches{batch = opts.batch or 8, workers = workers} do
    local m, s = pred:predict_batch(b.images)
    maps[#maps + 1] = m:squeeze(2)
    masks[#masks + 1] = b.masks:squeeze(2)
    for k, v in ipairs(s:totable()) do
      scores[#scores + 1] = v
      items[#items + 1] = {path = b.paths[k], defect = b.defects[k], index = b.indices[k]}
    end
  end
  local K = #masks == 1 and masks[1] or rn.cat(masks, 1)
  local labels = rn.metrics.image_labels(K):totable()
  for i, it in ipairs(items) do it.label = math.tointeger(labels[i]) end
  return scores, (#maps == 1 and maps[1] or rn.cat(maps, 1)), K, items
end

local function warnings_of(m, category, warn)
  for _, k in ipairs{"image_auroc", "pixel_auroc"} do
    if m[k] and m[k] < 0.5 then
      warn(("%s: %s %.4f is below 0.5 (reported as is, not flipped): the scores may be inverted"):format(category,
        k, m[k]))
    end
  end
end

local function metrics_of(scores, maps, masks)
  local ok, m = pcall(rn.metrics.evaluate, rn.tensor(scores), maps, masks, nil, {quiet = true})
  if not ok then error("metrics: " .. clean(m), 0) end
  return m
end

local function basename_noext(p) return (p:match("([^/]+)$") or p):gsub("%.[^.]*$", "") end

-- TIFF maps at the original size and overlays, for one category.
local function write_outputs(run, pred, category, maps, masks, items, opts)
  local lo, hi = maps:min():item(), maps:max():item()
  if pred.method == "realnet" then lo, hi = 0, 1 end
  for i, it in ipairs(items) do
    local id = basename_noext(it.path)
    local img, msg = image.read(it.path)
    if not img then error(("cannot read %s: %s"):format(it.path, tostring(msg)), 0) end
    local h, w = img:size(1), img:size(2)
    local small = maps:select(1, i):contiguous()
    if opts.maps ~= false then
      local dir = run:subdir("anomaly_maps", category, "test", it.defect)
      local rel = ("anomaly_maps/%s/test/%s/%s.tiff"):format(category, it.defect, id)
      image.write_tiff(dir .. "/" .. id .. ".tiff", predictor.resize_map(small, h, w))
      it.map = rel
    end
    if opts.overlays ~= false then
      local dir = run:subdir("images", category)
      image.overlay{image = pred:prepare(img), heat = small, gt = masks:select(1, i):contiguous(), lo = lo, hi = hi,
                    threshold = pred.threshold, path = ("%s/%s_%s.png"):format(dir, it.defect, id)}
    end
  end
end

-- Loads a per-epoch checkpoint into a RealNet predictor (the backbone stays as model.h5 has it).
local function load_checkpoint(pred, path)
  local sd, names, attrs = rn.state.load(path)
  if not sd then error(("cannot read checkpoint %s: %s"):format(path, tostring(names)), 0) end
  local cfg = attrs and attrs.realnet_config and rn.realnet.config.decode(attrs.realnet_config) or nil
  local ok, err = pcall(pred.model.load_state, pred.model, {config = cfg, tensors = sd})
  if not ok then error(("checkpoint %s: %s"):format(path, clean(err)), 0) end
  pred.model:eval()
  device.model(pred.model, pred.device) -- loaded weights may arrive on the host
end

--- best_on_test: evaluates each stored checkpoint; loads the best into pred and recomputes its threshold.
-- Returns the trace {{epoch, image_auroc, pixel_auroc, key}} and the chosen epoch.
function M.select_best(pred, cfg, dir, categories, opts, log)
  local cks = trainer.list_checkpoints(dir)
  if #cks == 0 then
    error(("--select best_on_test: %s has no per-epoch checkpoints (checkpoints/epoch_*.h5; were they kept?)"):format(dir), 0)
  end
  local trace, best, best_key = {}, nil, -math.huge
  for _, ck in ipairs(cks) do
    load_checkpoint(pred, ck.path)
    local si, sp = 0, 0
    for _, cat in ipairs(categories) do
      local scores, maps, masks = M.score_category(pred, cfg, cat, opts)
      local m = metrics_of(scores, maps, masks)
      si, sp = si + m.image_auroc, sp + m.pixel_auroc
    end
    local ia, pa = si / #categories, sp / #categories
    local key = (ia + pa) / 2
    trace[#trace + 1] = {epoch = ck.epoch, image_auroc = ia, pixel_auroc = pa, key = key}
    log(("  epoch %4d: image AUROC %.4f  pixel AUROC %.4f  mean %.4f"):format(ck.epoch, ia, pa, key))
    if key >= best_key then best, best_key = ck, key end -- ties: the later epoch
  end
  load_checkpoint(pred, best.path)
  local hold = trainer.split_dataset(dir, "train_holdout.jsonl", pred.image_size)
  local q = tonumber(pred.attrs.threshold_quantile) or cfg.trainer.threshold_quantile
  local hs = trainer.score_dataset(function(x) return pred:predict_batch(x) end, hold, opts.batch or 8)
  if #hs > 0 then pred.threshold = trainer.quantile(hs, q) end
  return trace, best.epoch
end

-- Evaluates one model (one run directory) on its categories; writes nothing but the maps and overlays.
local function eval_model(model_dir, cfg, categories, run, opts, log, warn)
  local ok, pred = pcall(predictor.open, model_dir, {device = opts.device})
  if not ok then error(clean(pred), 0) end
  local selection, epoch, trace = "last_epoch", math.tointeger(pred.attrs.epoch), nil
  if opts.select == "best_on_test" then
    if pred.method == "realnet" then
      log(BANNER)
      log(("selecting among the checkpoints of %s on the test set:"):format(model_dir))
      trace, epoch = M.select_best(pred, cfg, model_dir, categories, opts, log)
      selection = "best_on_test"
      log(("best_on_test: epoch %d"):format(epoch))
    else
      warn("PatchCore has no epochs: --select best_on_test is the same model as last_epoch")
    end
  end
  local per = {}
  for _, cat in ipairs(categories) do
    local scores, maps, masks, items = M.score_category(pred, cfg, cat, opts)
    local m = metrics_of(scores, maps, masks)
    warnings_of(m, cat, warn)
    write_outputs(run, pred, cat, maps, masks, items, opts)
    m.epoch, m.selection, m.threshold = epoch, selection, pred.threshold
    per[#per + 1] = {category = cat, metrics = m, scores = scores, items = items}
  end
  return per, {selection = selection, epoch = epoch, trace = trace, method = pred.method, threshold = pred.threshold,
               threshold_source = pred.attrs.threshold_source, image_size = pred.image_size}
end

local KEYS = {"image_auroc", "pixel_auroc", "aupro", "pro_realnet", "f1_max_image", "f1_max_pixel"}

--- run(dir, opts{data, select = "last_epoch" | "best_on_test", overlays = true, maps = true, batch}) -> metrics.
function M.run(dir, opts)
  opts = opts or {}
  local select = opts.select or "last_epoch"
  if select ~= "last_epoch" and select ~= "best_on_test" then
    error(("--select must be last_epoch or best_on_test, not '%s'"):format(tostring(select)), 0)
  end
  opts.device = device.resolve(opts.device) -- before any work
  local run, err = rundir.open(dir)
  if not run then error(("%s is not a run directory (%s)"):format(dir, err), 0) end
  local result
  local ok, e = pcall(function()
    local cfg, cerr = config.load(run:path("config.lua"))
    if not cfg then error(("%s has no readable config.lua: %s"):format(dir, cerr), 0) end
    if opts.data then cfg.data.root = opts.data end
    local warns = {}
    local function warn(msg) warns[#warns + 1] = msg; run:warn(msg) end
    local function log(msg) print(msg) end
    local cats = trainer.categories(cfg)
    local per, info = {}, nil
    local t0 = rn.now()
    if core.file_type(run:path("model.h5")) == "file" then
      per, info = eval_model(run.dir, cfg, cats, run, opts, log, warn)
    else -- one model per category in sub-directories
      for _, cat in ipairs(cats) do
        local sub, serr = config.load(run:path(cat, "config.lua"))
        if not sub then error(("%s: no model.h5 and no category run %s (%s)"):format(dir, cat, serr), 0) end
        if opts.data then sub.data.root = opts.data end
        local p, i = eval_model(run:path(cat), sub, {cat}, run, opts, log, warn)
        per[#per + 1] = p[1]
        info = info or i
        if i.selection == "best_on_test" then info.selection = "best_on_test" end
        info.epochs = info.epochs or {}
        info.epochs[cat] = i.epoch
      end
    end
    -- per-image scores
    local sc <close> = run:csv("scores.csv", {"category", "path", "defect", "label", "score", "predicted", "map"})
    for _, c in ipairs(per) do
      local thr = c.metrics.threshold
      for i, it in ipairs(c.items) do
        sc:row{category = c.category, path = it.path, defect = it.defect, label = it.label, score = c.scores[i],
               predicted = thr and (c.scores[i] >= thr and 1 or 0) or nil, map = it.map}
      end
    end
    -- metrics
    local rows, cats_json = {}, {}
    local mean = {}
    for _, k in ipairs(KEYS) do mean[k] = 0 end
    for _, c in ipairs(per) do
      local m = c.metrics
      local row = {category = c.category, n_images = m.n_images, n_anomalous = m.n_anomalous, epoch = m.epoch,
                   selection = m.selection, threshold = m.threshold}
      for _, k in ipairs(KEYS) do row[k] = m[k]; mean[k] = mean[k] + m[k] / #per end
      rows[#rows + 1] = row
      cats_json[c.category] = row
    end
    local cols = {"category", "image_auroc", "pixel_auroc", "aupro", "pro_realnet", "f1_max_image", "f1_max_pixel",
                  "n_images", "n_anomalous", "epoch", "selection", "threshold"}
    if #rows > 1 then
      local mrow = {category = "mean", selection = info.selection}
      for _, k in ipairs(KEYS) do mrow[k] = mean[k] end
      rows[#rows + 1] = mrow
    end
    run:write_csv("metrics.csv", cols, rows)
    result = {method = info.method, categories = cats_json, warnings = require("realnet.json").array(warns)}
    for _, k in ipairs(KEYS) do result[k] = mean[k] end
    result.f1_max = mean.f1_max_image
    result.protocol = {
      selection = info.selection, epoch = info.epoch, epochs = info.epochs,
      pro_definition = M.PRO_DEFINITION, pro_variant = M.PRO_VARIANT, aupro_limit = 0.3,
      image_size = info.image_size,
      metric_resolution = ("%dx%d (the model input; masks resized nearest)"):format(info.image_size, info.image_size),
      map_resolution = "original image size (anomaly_maps/*.tiff)",
      seed = cfg.trainer and cfg.trainer.seed, dataset = cfg.data.dataset, data_root = cfg.data.root,
      unified = cfg.data.unified, setting = cfg.data.unified and "unified (one model for all categories)"
        or "one model per category",
      threshold = info.threshold, threshold_source = info.threshold_source or "none",
      auroc_below_half = "reported as is (never flipped)",
    }
    if info.trace then result.selection_trace = info.trace end
    run:write_json("metrics.json", result, {order = {"image_auroc", "pixel_auroc", "aupro", "pro_realnet", "f1_max",
      "method", "protocol"}})
    print(("%-24s %9s %9s %9s %9s %9s"):format("category", "img AUROC", "pix AUROC", "AU-PRO", "PRO(rn)", "F1-max"))
    for _, r in ipairs(rows) do
      print(("%-24s %9.4f %9.4f %9.4f %9.4f %9.4f"):format(r.category, r.image_auroc, r.pixel_auroc, r.aupro,
        r.pro_realnet, r.f1_max_image))
    end
    print(("%s, selection %s, %.1f s; wrote %s/metrics.json, metrics.csv, scores.csv%s%s"):format(info.method,
      info.selection, rn.now() - t0, run.dir, opts.maps ~= false and ", anomaly_maps/" or "",
      opts.overlays ~= false and ", images/" or ""))
    if info.selection == "best_on_test" then print(BANNER) end
  end)
  run:close()
  if not ok then error(clean(e), 0) end
  return result
end

return M
