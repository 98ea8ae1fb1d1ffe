--- realnet.patchcore: the PatchCore peer baseline (Roth et al. 2022) on a frozen backbone.
--
--   local rn = require "realnet"
--   local bb = rn.backbone("resnet50v2", {weights = "resnet50v2.safetensors"})
--   local pc = rn.patchcore.new{backbone = bb, layers = {2, 3}, coreset = 0.1, seed = 1}
--   pc:fit(rn.data.mvtec(root, "bottle", {split = "train", size = 256}))
--   local maps, scores = pc:predict(x)          -- [B,1,H,W] anomaly maps, [B] image scores
--   pc:save("patchcore.h5")
--   local again = rn.patchcore.load("patchcore.h5", bb)
--
-- Options of new: backbone, layers (1-based stage indices or names, default {2, 3}), neighbourhood (3),
-- pre_dim and dim (adaptive channel pooling targets, 0 = off), coreset (fraction kept, 0.1), proj_dim (random
-- projection dims for the coreset distances, 128; 0 = exact), seed (0), sigma (map smoothing, 4),
-- score ("patch_max" default, "map_max" or "reweight") and reweight (neighbours of the paper's reweighting, 9).
-- See engine/include/realnet/patchcore.h for what each step computes.
local core = require "realnet.core"

local M = {}
local methods = core.patchcore_methods

--- A new model (userdata) without a memory bank.
function M.new(opts) return core.patchcore_new(opts or {}) end

--- A model saved with pc:save; backbone (optional) must be the architecture it was built on.
function M.load(path, backbone) return core.patchcore_load(path, backbone) end

--- Greedy k-center rows of x [N,D] (int64 [k], 1-based, selection order), starting at row `start` (1).
M.kcenter = core.patchcore_kcenter
--- The k nearest bank rows for each query row: distances [M,k] ascending and int64 1-based rows [M,k].
M.knn = core.patchcore_knn
--- x [N,D] times a seeded Gaussian matrix of std 1/sqrt(dims): [N, dims].
M.project = core.patchcore_project
--- Gaussian smoothing of [N,C,H,W] maps (std sigma, radius round(4 sigma), reflect borders).
M.blur = core.patchcore_blur

local function images_of(b)
  if core.is_tensor(b) then return b end
  if type(b) == "table" and core.is_tensor(b.images) then return b.images end
  error("patchcore fit: each batch must be an image tensor or a table with .images", 3)
end

--- Adds every training batch of `src`, then builds the bank; returns self.
-- src: a dataset (read with opts.batch (16) and opts.workers), an image tensor, a list of tensors or batches, or
-- an iterator: `pc:fit(ds:batches{batch = 8})` (the generic-for triple) or any function returning batches until
-- nil. opts.progress(images_done, training_patches) is called after each batch when given (not for iterators).
function methods:fit(src, ...)
  local opts = {}
  if type(src) ~= "function" then
    opts = ... or {}
    if type(opts) ~= "table" then error("patchcore fit: opts must be a table", 2) end
  end
  local seen = 0
  local function add(b)
    local x = images_of(b)
    local patches = self:add(x)
    seen = seen + x:shape()[1]
    if opts.progress then opts.progress(seen, patches) end
  end
  if core.is_tensor(src) then
    add(src)
  elseif type(src) == "function" then
    local state, ctl = ...
    for b in src, state, ctl do add(b) end
  elseif type(src) == "userdata" and type(src.batches) == "function" then
    for b in src:batches{ batch = opts.batch or 16, workers = opts.workers } do add(b) end
  elseif type(src) == "table" then
    for _, b in ipairs(src) do add(b) end
  else
    error("patchcore fit: expected a dataset, an image tensor, a list of batches or an iterator", 2)
  end
  if seen == 0 then error("patchcore fit: no training images (empty training set)", 2) end
  self:build()
  return self
end

return M
