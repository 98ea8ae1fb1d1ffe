--- realnet.predictor: a trained model (RealNet or PatchCore) loaded once, for `realnet predict`, `realnet eval`
-- and the C deployment API (lua/capi/realnet_model.c).
--
--   local predictor = require "realnet.predictor"
--   local p = predictor.open("runs/demo")                 -- a run directory or its model.h5
--   local r = p:predict_file("part.png")                  -- {score, label, map = float32 [H,W] (original size)}
--   local maps, scores = p:predict_batch(x)               -- x float32 [B,3,S,S], ImageNet-normalised
--
-- Images are read and prepared exactly as the dataset readers do for training: gray+alpha -> gray, RGBA ->
-- RGB (alpha dropped), gray replicated to RGB after resizing, bilinear resize to S x S, ImageNet normalisation.
-- label = score >= threshold, the threshold stored in the model file (a quantile of held-out normal training
-- images' scores). A PatchCore file records its backbone (arch, weights path, seed) and rebuilds it.
-- The library's pieces by name (not require "realnet": init.lua loads this module, so that would be a cycle).
local core = require "realnet.core"
local rn = setmetatable({data = require "realnet.data", synth = require "realnet.synth",
  realnet = require "realnet.realnet", patchcore = require "realnet.patchcore", metrics = require "realnet.metrics",
  state = require "realnet.state", h5 = require "realnet.h5", optim = require "realnet.optim"}, {__index = core})
local device = require "realnet.device"

local image = core.image
local M = {}

local P = {}
P.__index = P

local function clean(msg) return (tostring(msg):gsub("^[^\n]-%.lua:%d+: ", "")) end

--- The model file of a run directory (or the path itself when it is a file); raises when missing.
function M.model_path(path)
  if type(path) ~= "string" then error("predictor: expected a run directory or a model file, got " .. type(path), 0) end
  local kind = core.file_type(path)
  if kind == "directory" then
    local p = path:gsub("/+$", "") .. "/model.h5"
    if core.file_type(p) == "file" then return p end
    error(("predictor: %s has no model.h5 (is it a run directory of `realnet train`, and did training finish?)")
      :format(path), 0)
  elseif kind == "file" then
    return path
  end
  error(("predictor: %s does not exist"):format(path), 0)
end

--- Root attributes of an HDF5 file; raises naming the file when it is not one.
function M.file_attrs(path)
  local f = io.open(path, "rb")
  if not f then error("predictor: cannot open " .. path, 0) end
  local head = f:read(8) or ""
  f:close()
  if head ~= "\137HDF\r\n\26\n" then
    error(("predictor: %s is not a model file (not HDF5); expected the model.h5 of `realnet train`"):format(path), 0)
  end
  local h = core.h5.open(path, "r")
  local attrs = h:attrs()
  h:close()
  return attrs
end

--- open(run directory | model file [, opts{device, tf32, bf16, graph, lanes}]) -> predictor {method, image_size,
-- threshold, attrs, path, model, device}. The network runs on opts.device (default cpu); predict_batch returns
-- host tensors. On a CUDA device, tf32 switches TF32 math on, bf16 the bfloat16 autocast of convolutions and
-- products (core.cuda.set_bf16), graph replays a CUDA graph of the RealNet forward
-- recorded per batch size (PatchCore ignores it) and lanes (1 .. 8) sets core.cuda.set_lanes.
function M.open(path, opts)
  opts = opts or {}
  local dev = device.resolve(opts.device) -- before reading the model: an unusable device fails first
  if opts.lanes ~= nil and (math.type(opts.lanes) ~= "integer" or opts.lanes < 1 or opts.lanes > 8) then
    error(("predictor: lanes must be an integer 1 .. 8, got %s"):format(tostring(opts.lanes)), 0)
  end
  local gpu_only = opts.tf32 and "tf32" or opts.bf16 and "bf16" or opts.graph and "a CUDA graph" or
    (opts.lanes or 1) > 1 and "lanes"
  if gpu_only and not dev:match("^cuda") then
    error(("predictor: %s needs a CUDA device (--device cuda)"):format(gpu_only), 0)
  end
  if opts.tf32 then core.cuda.set_tf32(true) end
  if opts.bf16 then core.cuda.set_bf16(true) end
  if opts.lanes then core.cuda.set_lanes(opts.lanes) end
  local file = M.model_path(path)
  local attrs = M.file_attrs(file)
  local self = setmetatable({path = file, attrs = attrs}, P)
  if attrs.method == "patchcore" then
    local bo = {seed = math.tointeger(attrs.backbone_seed) or 0, device = dev} -- the bank stays on the host
    if attrs.backbone_weights and attrs.backbone_weights ~= "" then bo.weights = attrs.backbone_weights end
    local ok, bb = pcall(rn.backbone, attrs.backbone_arch, bo)
    if not ok then error(("predictor: %s: cannot rebuild its backbone: %s"):format(file, clean(bb)), 0) end
    local okp, pc = pcall(rn.patchcore.load, file, bb)
    if not okp then error(("predictor: %s: %s"):format(file, clean(pc)), 0) end
    self.method, self.model, self.backbone = "patchcore", pc, bb
  elseif attrs.realnet_config then
    local ok, m = pcall(rn.realnet.load, file)
    if not ok then error(("predictor: %s"):format(clean(m)), 0) end
    m:eval()
    device.model(m, dev)
    self.method, self.model = "realnet", m
  else
    error(("predictor: %s is not a model of `realnet train` (no method or realnet_config attribute; %s)"):format(
      file, attrs.content and ("content: " .. tostring(attrs.content)) or "an HDF5 file of another kind"), 0)
  end
  self.image_size = math.tointeger(attrs.image_size) or (self.method == "realnet" and self.model.cfg.image_size)
  if not self.image_size then error(("predictor: %s does not record its image size"):format(file), 0) end
  self.threshold = tonumber(attrs.threshold)
  self.device = dev
  self.graphs = opts.graph and self.method == "realnet" and {} or nil -- batch size -> runner
  return self
end

--- maps [B,1,S,S] and scores [B] of ImageNet-normalised images x float32 [B,3,S,S].
function P:predict_batch(x)
  if not core.is_tensor(x) or x:dim() ~= 4 then
    error("predictor: images must be a float32 [B,3,H,W] tensor", 2)
  end
  local S = self.image_size
  local s = x:shape()
  if s[2] ~= 3 then
    error(("predictor: images have %d channels [%s]; the model takes 3-channel (RGB) images"):format(s[2],
      table.concat(s, ",")), 2)
  end
  if s[3] ~= S or s[4] ~= S then
    error(("predictor: images are %dx%d; the model was trained at %dx%d"):format(s[3], s[4], S, S), 2)
  end
  if self.method == "realnet" and self.graphs then
    local B = s[1]
    if not self.graphs[B] then self.graphs[B] = self.model:graph(device.to(x, self.device)) end
    local maps, scores = self.graphs[B]:run(x) -- device tensors the next run overwrites: copy them out
    return device.host(maps), device.host(scores)
  elseif self.method == "realnet" then
    local maps, scores = self.model:forward(device.to(x, self.device))
    return device.host(maps), device.host(scores)
  end
  return self.model:predict(x) -- PatchCore moves the images to its backbone and scores on the host
end

--- uint8 [H,W,C] with C = 1, 2, 3 or 4 (or int32 16-bit data) -> uint8 RGB [S,S,3] prepared as the datasets
-- do. Raises on other channel counts or dtypes.
function P:prepare(img)
  if not core.is_tensor(img) then error("predictor: expected an image tensor [H,W,C]", 2) end
  local s = img:shape()
  if #s == 2 then img = img:reshape({s[1], s[2], 1}); s = img:shape() end
  if #s ~= 3 then error(("predictor: an image must be [H,W] or [H,W,C], got [%s]"):format(table.concat(s, ",")), 2) end
  local c = s[3]
  if c < 1 or c > 4 then
    error(("predictor: the image has %d channels; expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)"):format(c), 2)
  end
  if img:dtype() == "int32" then -- 16-bit PNG data: to 8 bits
    img = (img:float() / 257 + 0.5):clamp(0, 255):to("uint8")
  elseif img:dtype() ~= "uint8" then
    error(("predictor: image data must be uint8 (or 16-bit as int32), got %s"):format(img:dtype()), 2)
  end
  if c == 2 then img = image.to_gray(img) elseif c == 4 then img = image.to_rgb(img) end
  local S = self.image_size
  if img:size(1) ~= S or img:size(2) ~= S then img = image.resize(img, S, S) end
  if img:size(3) == 1 then img = image.to_rgb(img) end
  return img
end

--- Prediction for one image tensor uint8 [H,W,C]: {score, label, map (float32 [H,W] at the image's size),
-- small_map (float32 [S,S]), rgb (the prepared uint8 [S,S,3])}. opts.map = false skips the resized map.
function P:predict_image(img, opts)
  local h, w = img:size(1), img:size(2)
  local rgb = self:prepare(img)
  local x = image.normalize(rgb):unsqueeze(1)
  local maps, scores = self:predict_batch(x)
  local small = maps:select(1, 1):select(1, 1):contiguous()
  local r = {score = scores:item(), small_map = small, rgb = rgb, height = h, width = w}
  if self.threshold then r.label = r.score >= self.threshold end
  if not opts or opts.map ~= false then r.map = M.resize_map(small, h, w) end
  return r
end

--- Prediction for an image file (see predict_image); raises naming the file when it cannot be read.
function P:predict_file(path, opts)
  local ok, img, msg = pcall(image.read, path)
  if not ok then error(("predictor: %s: %s"):format(path, clean(img)), 0) end
  if not img then error(("predictor: cannot read %s: %s"):format(path, tostring(msg)), 0) end
  local okp, r = pcall(self.predict_image, self, img, opts)
  if not okp then error(("predictor: %s: %s"):format(path, clean(r):gsub("^predictor: ", "")), 0) end
  r.path = path
  return r
end

--- A float32 [S,S] map resized (bilinear) to [h,w].
function M.resize_map(map, h, w)
  if map:size(1) == h and map:size(2) == w then return map end
  return image.resize_planes(map:unsqueeze(1), h, w):select(1, 1):contiguous()
end

--- Image files (png, jpg, jpeg, bmp, tif excluded) under a directory, recursively, sorted.
function M.list_images(dir)
  local out = {}
  local function walk(d)
    local names = core.listdir(d) or {}
    table.sort(names)
    for _, n in ipairs(names) do
      local p = d .. "/" .. n
      local t = core.file_type(p)
      if t == "directory" then walk(p)
      elseif t == "file" then
        local ext = (n:match("%.(%w+)$") or ""):lower()
        if ext == "png" or ext == "jpg" or ext == "jpeg" or ext == "bmp" then out[#out + 1] = p end
      end
    end
  end
  walk(dir)
  return out
end

function P:describe()
  return ("%s model %s (%dx%d, threshold %s)"):format(self.method, self.path, self.image_size, self.image_size,
    self.threshold and ("%.6g"):format(self.threshold) or "none")
end

return M
