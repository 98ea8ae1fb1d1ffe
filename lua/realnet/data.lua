--- realnet.data: anomaly-detection datasets (MVTec AD, VisA, MPDD, BTAD, RealNet JSON lines, plain folders).
--
--   local rn = require "realnet"
--   local ds = rn.data.mvtec("/data/mvtec", "bottle", {split = "train", size = 256})
--   local item = ds:get(1)             -- {image = [3,256,256], mask = [1,256,256], label, defect, path}
--   for b in ds:batches{batch = 16, shuffle = true, seed = 100, workers = 4} do
--     -- b.images [B,3,H,W] float32, b.masks [B,1,H,W], b.labels int64 [B], b.paths, b.defects, b.indices
--   end
--
-- Options of the readers: split ("train", "test" or "all"), size (N or {H, W}; 0 keeps each image's size),
-- normalize (true: ImageNet mean/std, false: [0,1]). Folder: normal (dir, default "good"), abnormal (dir or
-- list; default every other sub-directory), masks (dir), normal_test (dir of test normals).
-- Batches: batch (16), shuffle (false), seed and epoch (the order depends only on them), workers
-- (default min(4, cores); 0 decodes on the calling thread), drop_last (false), prefetch (2 per worker).
-- Datasets and loaders are userdata with __gc and __close; `break` out of a batches loop stops its workers.
local core = require "realnet.core"

local M = {}

-- (root, category, opts) or (root, opts): the category may be left out when root is the category dir.
local function args(category, opts)
  if type(category) == "table" and opts == nil then return nil, category end
  return category, opts
end

--- MVTec AD layout: <root>/<category>/{train/good, test/<defect>, ground_truth/<defect>/<id>_mask.png}.
function M.mvtec(root, category, opts)
  category, opts = args(category, opts)
  return core.dataset("mvtec", root, category, opts)
end

--- MPDD: the MVTec layout.
function M.mpdd(root, category, opts)
  category, opts = args(category, opts)
  return core.dataset("mpdd", root, category, opts)
end

--- BTAD: train/ok, test/{ok, ko}, ground_truth/ko/<id>.png or .bmp.
function M.btad(root, category, opts)
  category, opts = args(category, opts)
  return core.dataset("btad", root, category, opts)
end

--- VisA through <root>/split_csv/1cls.csv (or the MVTec-like re-formatted copy when the csv is absent).
function M.visa(root, category, opts)
  category, opts = args(category, opts)
  return core.dataset("visa", root, category, opts)
end

--- A plain folder: <root>/<normal> for training, the abnormal dirs (and normal_test) for testing.
function M.folder(root, opts)
  return core.dataset("folder", root, nil, opts)
end

--- A RealNet protocol file (JSON lines) with image paths relative to image_dir; opts.category filters by clsname.
function M.jsonl(protocol, image_dir, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.protocol = protocol
  return core.dataset("jsonl", image_dir, o.category, o)
end

--- Any kind by name: "mvtec", "visa", "mpdd", "btad", "jsonl" (root = image dir, opts.protocol) or "folder".
function M.open(kind, root, category, opts)
  category, opts = args(category, opts)
  return core.dataset(kind, root, category, opts)
end

--- Checks a dataset (both splits, every file decoded): {counts, problems, warnings, images, masks}, where
-- counts are {split, defect, images, masks} and problems/warnings {kind, path, message}, sorted by path.
function M.check(kind, root, category, opts, threads)
  category, opts = args(category, opts)
  return core.dataset_check(kind, root, category, opts, threads)
end

--- Category names under a dataset root (sub-directories with train/ or test/, or VisA's csv objects).
function M.categories(kind, root) return core.dataset_categories(kind, root) end

--- The layout of a directory ("mvtec", "btad", "visa"), or nil, msg.
function M.detect(dir) return core.dataset_detect(dir) end

--- The default worker count: min(4, cores).
function M.default_workers() return core.data_default_workers() end

return M
