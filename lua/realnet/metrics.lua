--- realnet.metrics: image and pixel AUROC, AU-PRO and F1-max of anomaly scores (tensors in, numbers out).
--
--   local rn = require "realnet"
--   local auc = rn.metrics.auroc(scores, labels)                  -- [N] scores, [N] 0/1 labels
--   local pro = rn.metrics.aupro(maps, masks, {limit = 0.3})      -- [N,H,W] maps, [N,H,W] masks (> 0 = defect)
--   local m = rn.metrics.evaluate(scores, maps, masks)            -- every metric in one table
--
-- Curves are exact (one sort, ties grouped, no binning). AUROC equals scikit-learn's roc_auc_score and is
-- reported as it is: below 0.5 it is not flipped (evaluate warns on stderr). AU-PRO is the MVTec definition
-- (8-connected regions, exact curve, trapezoid to FPR `limit` divided by `limit`); RealNet's own variant
-- (1000 thresholds, hole-filled regions, min-max rescaled FPR) is `variant = "realnet"`, for comparison with
-- the paper only. Maps and masks may be [H,W], [N,H,W] or [N,1,H,W]; any dtype and device.
local core = require "realnet.core"

local mc = core.metrics_core
local M = {}

local function tensor_arg(v, what, fn)
  if type(v) == "table" and getmetatable(v) == nil then return core.tensor(v) end
  if not core.is_tensor(v) then
    error(("rn.metrics.%s: %s must be a tensor (or a list of numbers), not %s"):format(fn, what, type(v)), 3)
  end
  return v
end

local function opt(opts, key, default)
  if opts == nil then return default end
  if type(opts) ~= "table" then error("rn.metrics: opts must be a table", 3) end
  local v = opts[key]
  if v == nil then return default end
  return v
end

--- AUROC of scores against binary labels (> 0 is positive). Errors on one class only, NaN or size mismatch.
function M.auroc(scores, labels)
  return mc.auroc(tensor_arg(scores, "scores", "auroc"), tensor_arg(labels, "labels", "auroc"))
end

--- The best F1 over all thresholds and the threshold reaching it (positive: score >= threshold).
function M.f1_max(scores, labels)
  return mc.f1_max(tensor_arg(scores, "scores", "f1_max"), tensor_arg(labels, "labels", "f1_max"))
end

--- AU-PRO of maps against masks. opts: limit (0.3), variant ("mvtec" | "realnet"), steps (1000, realnet only).
function M.aupro(maps, masks, opts)
  maps, masks = tensor_arg(maps, "maps", "aupro"), tensor_arg(masks, "masks", "aupro")
  local limit, variant = opt(opts, "limit", 0.3), opt(opts, "variant", "mvtec")
  if variant == "mvtec" then return mc.aupro(maps, masks, limit) end
  if variant == "realnet" then return mc.pro_realnet(maps, masks, opt(opts, "steps", 1000), limit) end
  error(("rn.metrics.aupro: variant must be \"mvtec\" or \"realnet\", not %q"):format(tostring(variant)), 2)
end

--- Image labels as RealNet derives them: uint8 [N], 1 where the image's mask has a pixel > 0.
function M.image_labels(masks) return mc.image_labels(tensor_arg(masks, "masks", "image_labels")) end

local function warn_below_half(name, v, opts)
  if v < 0.5 and not opt(opts, "quiet", false) then
    io.stderr:write(("warning: %s %.4f is below 0.5 (reported as is, not flipped): the scores may be inverted\n")
      :format(name, v))
  end
end

--- Every metric of a test set. scores: [N] image scores; maps/masks: [N,H,W]; labels: [N] (default: from the
-- masks, as RealNet does). opts: limit (0.3), realnet_pro (true: also RealNet's PRO variant), steps (1000),
-- quiet (false: no stderr warnings). Returns {image_auroc, pixel_auroc, aupro, aupro_limit, pro_realnet,
-- f1_max_image, f1_threshold_image, f1_max_pixel, f1_threshold_pixel, n_images, n_anomalous, n_pixels,
-- n_defect_pixels, n_regions}.
function M.evaluate(scores, maps, masks, labels, opts)
  scores = tensor_arg(scores, "scores", "evaluate")
  maps, masks = tensor_arg(maps, "maps", "evaluate"), tensor_arg(masks, "masks", "evaluate")
  local limit = opt(opts, "limit", 0.3)
  local from_masks = mc.image_labels(masks)
  local n = from_masks:numel()
  labels = labels ~= nil and tensor_arg(labels, "labels", "evaluate") or from_masks
  if scores:numel() ~= n then
    error(("rn.metrics.evaluate: %d image scores for %d maps"):format(scores:numel(), n), 2)
  end
  if labels:numel() ~= n then
    error(("rn.metrics.evaluate: %d image labels for %d maps"):format(labels:numel(), n), 2)
  end
  local r = {n_images = n, aupro_limit = limit}
  r.image_auroc = mc.auroc(scores, labels)
  r.f1_max_image, r.f1_threshold_image = mc.f1_max(scores, labels)
  local pm = mc.pixel(maps, masks, limit)
  r.pixel_auroc, r.aupro = pm.auroc, pm.aupro
  r.f1_max_pixel, r.f1_threshold_pixel = pm.f1_max, pm.f1_threshold
  r.n_pixels, r.n_defect_pixels, r.n_regions = pm.n_pixels, pm.n_defect_pixels, pm.n_regions
  r.n_anomalous = math.tointeger(labels:float():gt(0):float():sum():item())
  if opt(opts, "realnet_pro", true) then
    r.pro_realnet = mc.pro_realnet(maps, masks, opt(opts, "steps", 1000), limit)
  end
  warn_below_half("image AUROC", r.image_auroc, opts)
  warn_below_half("pixel AUROC", r.pixel_auroc, opts)
  return r
end

return M
