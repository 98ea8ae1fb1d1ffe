--- realnet.realnet.model: the RealNet model (spec 0, 4-9): frozen backbone -> AFS -> reconstruction U-Nets ->
-- squared residuals -> RRS -> discriminator -> 2-class logits at the image size.
--
-- The model is an nn.Module whose children are afs (selection buffers), recon (one U-Net per block), rrs (the
-- selector's running statistics as buffers) and disc; parameters() are the trainable recon + disc weights. The
-- backbone (userdata) and the RRS selector (userdata) are fields, not children.
local core = require "realnet.core"
local nn = require "realnet.nn"
local config = require "realnet.realnet.config"
local afs = require "realnet.realnet.afs"
local unet = require "realnet.realnet.unet"
local disc = require "realnet.realnet.disc"
local device = require "realnet.device"

local M = {}

local Model = nn.class("RealNet", nn.Module)
M.Model = Model

-- Level groups per architecture (paper Table S4): A one block per level, B all levels in one block, C
-- neighbouring levels in pairs (an odd last level alone).
local function block_groups(arch, n)
  local g = {}
  if arch == "A" then
    for l = 1, n do g[l] = {l} end
  elseif arch == "B" then
    g[1] = {}
    for l = 1, n do g[1][l] = l end
  else
    for l = 1, n, 2 do g[#g + 1] = l < n and {l, l + 1} or {l} end
  end
  return g
end

-- Holds the selector's live running statistics as buffers, so state_dict / load_state_dict cover them.
local RRSState = nn.class("RRSState", nn.Module)
function RRSState:__init(sel)
  self:register_buffer("running_mean", sel:running_mean())
  self:register_buffer("running_var", sel:running_var())
end

--- Model(cfg, bb): cfg resolved (config.resolve), bb a backbone whose outputs are cfg.backbone.layers.
function Model:__init(cfg, bb)
  self.cfg = cfg
  self.backbone = bb
  local levels = {}
  for i, s in ipairs(bb:stages()) do
    if s.output then
      if not s.ready then error(("realnet: backbone stage %s (%d) has no weights"):format(s.name, i), 0) end
      levels[s.output] = {name = s.name, channels = s.channels, stride = s.reduction}
    end
  end
  if #levels ~= #cfg.backbone.layers then
    error(("realnet: the backbone gives %d feature levels but backbone.layers lists %d"):format(#levels,
      #cfg.backbone.layers), 0)
  end
  self.levels = levels
  local chans = {}
  for l, v in ipairs(levels) do chans[l] = v.channels end
  self:add_module("afs", afs.AFS(chans, cfg.afs.dims, cfg.afs))

  local g = core.generator(cfg.seed, 0)
  local r = cfg.recon
  local uopts = {ratio = r.ratio, num_res_blocks = r.num_res_blocks, channel_mult = r.channel_mult,
                 attention = r.attention, head_channels = r.head_channels, norm_groups = r.norm_groups,
                 middle_attention = r.middle_attention, generator = g}
  self.blocks = {}
  local recon = self:add_module("recon", nn.Sequential())
  local total, finest = 0, math.huge
  for b, group in ipairs(block_groups(r.arch, #levels)) do
    local c, stride = 0, math.huge
    for _, l in ipairs(group) do
      c = c + cfg.afs.dims[l]
      stride = math.min(stride, levels[l].stride)
    end
    local net = unet.UNet(c, uopts)
    local side = cfg.image_size / stride
    if side ~= math.floor(side) or side % net:divisor() ~= 0 then
      error(("realnet: image_size %d gives %gx%g features in block %d (stride %d), not divisible by %d as the "
        .. "%d-level U-Net needs; pick an image size divisible by %d"):format(cfg.image_size, side, side, b, stride,
        net:divisor(), #r.channel_mult, stride * net:divisor()), 0)
    end
    self.blocks[b] = {levels = group, channels = c, stride = stride, side = math.floor(side)}
    recon:add(net)
    total = total + c
    finest = math.min(finest, stride)
  end
  self.residual_channels, self.residual_side = total, cfg.image_size // finest

  local q = cfg.rrs
  self.selector = core.rrs.new{mode = q.mode, ratio = q.ratio, counts = q.counts, channels = total,
                               enabled = q.enabled, momentum = q.momentum, eps = q.eps}
  self:add_module("rrs", RRSState(self.selector))
  local d = cfg.disc
  self:add_module("disc", disc.Discriminator(self.selector:out_channels(), {hidden = d.hidden, mid = d.mid,
    residual_layers = d.residual_layers, bn_momentum = d.bn_momentum, generator = g}))
  self.score_pool = config.score_pool(cfg)
end

-- ------------------------------------------------------------------ input checks

function Model:check_images(x, what)
  what = what or "images"
  if not core.is_tensor(x) then error(("realnet: %s must be a tensor, got %s"):format(what, type(x)), 3) end
  local s, S = x:shape(), self.cfg.image_size
  local shp = "[" .. table.concat(s, ",") .. "]"
  if #s ~= 4 or x:dtype() ~= "float32" then
    error(("realnet: %s must be float32 [B,3,H,W], got %s %s"):format(what, x:dtype(), shp), 3)
  end
  if s[2] ~= 3 then
    error(("realnet: %s have %d channels %s but the model takes 3-channel (RGB) images; repeat a grayscale "
      .. "channel 3 times or drop alpha"):format(what, s[2], shp), 3)
  end
  if s[3] ~= S or s[4] ~= S then
    error(("realnet: %s are %dx%d %s but the model was built for %dx%d (image_size); resize them first"):format(
      what, s[3], s[4], shp, S, S), 3)
  end
end

-- ------------------------------------------------------------------ pipeline pieces

--- Backbone features (a list per level), without grad.
function Model:extract(x)
  return core.no_grad(function() return self.backbone:forward(x) end)
end

--- Backbone features of A and I in one backbone call; samples where I equals A (normal samples of a mixed
-- batch) reuse A's features instead of being run twice.
function Model:extract_pair(A, I)
  local B = A:size(1)
  return core.no_grad(function()
    local diff = (A - I):abs():sum({2, 3, 4}):totable()
    local need = {}
    for b = 1, B do if diff[b] ~= 0 then need[#need + 1] = b end end
    if #need == 0 then
      local f = self.backbone:forward(A)
      return f, f
    end
    local x = #need == B and core.cat({A, I}, 1) or core.cat({A, core.index_select(I, 1, core.tensor(need):to(I:device()))}, 1)
    local f = self.backbone:forward(x)
    local map, j = {}, 0
    for b = 1, B do
      if diff[b] ~= 0 then j = j + 1; map[b] = B + j else map[b] = b end
    end
    local idx = core.tensor(map):to(A:device())
    local fa, fn = {}, {}
    for l, t in ipairs(f) do
      fa[l] = t:narrow(1, 1, B)
      fn[l] = core.index_select(t, 1, idx)
    end
    return fa, fn
  end)
end

--- Selected features per level -> block inputs: the levels of a block bilinearly upsampled (align_corners) to
-- its finest level's size and concatenated along channels.
function Model:align(sel)
  local out = {}
  for b, blk in ipairs(self.blocks) do
    if #blk.levels == 1 then
      out[b] = sel[blk.levels[1]]
    else
      local parts = {}
      for i, l in ipairs(blk.levels) do
        local f = sel[l]
        local s = f:shape()
        if s[3] ~= blk.side or s[4] ~= blk.side then
          f = core.upsample(f, {size = {blk.side, blk.side}, mode = "bilinear", align_corners = true})
        end
        parts[i] = f
      end
      out[b] = core.cat(parts, 2)
    end
  end
  return out
end

--- Block inputs (without grad) from images.
function Model:block_features(x)
  return core.no_grad(function() return self:align(self.afs(self:extract(x))) end)
end

--- Reconstruction, residuals, RRS and discriminator: logits [B,2,H,W] and the reconstructions per block.
-- training selects batch statistics (and running updates) in RRS.
-- At inference the blocks' networks are independent, so on a GPU with lanes on they run side by side
-- (realnet.device.parallel); training keeps one stream.
function Model:head(blocks, training)
  local recon = {}
  local nets = self.recon:children()
  local side = self.residual_side
  local function block(b)
    local x = blocks[b]
    local r = nets[b](x)
    recon[b] = r
    local e = (x - r):square()
    if self.blocks[b].side ~= side then
      e = core.upsample(e, {size = {side, side}, mode = "bilinear", align_corners = true})
    end
    return e
  end
  local residual
  if training then
    residual = {}
    for b = 1, #blocks do residual[b] = block(b) end
  else
    residual = device.parallel(blocks[1]:device(), #blocks, block)
  end
  local R = #residual == 1 and residual[1] or core.cat(residual, 2)
  local S = self.selector:forward(R, {training = training, indices = false})
  local S_ = self.cfg.image_size
  return self.disc(S, S_, S_), recon
end

--- Anomaly maps [B,1,S,S] (softmax probability of the anomaly class) and image scores [B] from head's logits.
function Model:maps_and_scores(logits)
  local p = core.softmax(logits, 2):narrow(2, 2, 1):contiguous()
  local k = math.min(self.score_pool, self.cfg.image_size)
  return p, core.avg_pool2d(p, k, {stride = 1}):max({2, 3, 4})
end

--- Inference (spec 9): x float32 [B,3,S,S] -> anomaly probability maps [B,1,S,S] (softmax of the anomaly class)
-- and image scores [B] (max of a pool x pool, stride-1 average pool of the map; pool = 16 at 256 and scales
-- with image_size). Runs without grad and with running statistics whatever the train/eval mode.
function Model:forward(x)
  self:check_images(x, "images")
  local prev = self.training
  self:train(false)
  local ok, maps, scores = pcall(core.no_grad, function()
    return self:maps_and_scores(self:head(self:block_features(x), false))
  end)
  self:train(prev)
  if not ok then error(maps, 0) end
  return maps, scores
end

--- A CUDA graph of forward for images shaped like x (float32 [B,3,S,S] on the model's CUDA device): returns a
-- runner with runner:run([images]) -> maps, scores and runner:free(). One eager forward first picks the cuDNN
-- algorithms and sizes the buffers; the capture then records the whole forward, which each run replays with
-- one launch, so its hundreds of small kernels cost host time once instead of per call. run copies images
-- (any device, x's shape) into the captured input and returns device tensors that the next run overwrites.
-- Weights updated in place are seen by later runs; a new AFS selection or a move needs a new graph.
function Model:graph(x)
  self:check_images(x, "images")
  local dev = x:device()
  if not dev:match("^cuda") then error("realnet: a CUDA graph needs the model and the images on a CUDA device", 2) end
  local input = x:clone()
  self:forward(input) -- warm-up: cuDNN's choices, RRS's row offsets, the allocator's blocks
  local frozen = self.afs:freeze()
  self.afs.frozen = frozen
  local ok, g, maps, scores = pcall(device.capture, function() return self:forward(input) end, dev)
  self.afs.frozen = nil
  if not ok then error("realnet: CUDA graph capture failed: " .. tostring(g), 2) end
  local runner = {graph = g, input = input, maps = maps, scores = scores, frozen = frozen}
  function runner:run(images)
    if images ~= nil then self.input:copy_(images) end
    self.graph:replay()
    return self.maps, self.scores
  end
  function runner:free() self.graph:free() end
  return runner
end

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

--- One training iteration (spec 8) on A (possibly anomalous), I (normal) float32 [B,3,S,S] and M [B,1,S,S]
-- (0/1): loss = seg_weight * CE (or focal) + mse_weight * sum over blocks of MSE(recon, AFS features of I).
-- With an optimiser: zero_grad, backward, step (the step is skipped when the loss is not finite, so a NaN
-- never reaches the weights). Without one, the losses are computed without grad. Returns
-- {loss, seg, mse, finite} as numbers (finite: boolean).
function Model:train_step(A, I, Mk, optimiser)
  self:check_images(A, "A (anomalous images)")
  self:check_images(I, "I (normal images)")
  local B, S = A:size(1), self.cfg.image_size
  if I:size(1) ~= B then error(("realnet: A has %d images but I has %d"):format(B, I:size(1)), 2) end
  if not core.is_tensor(Mk) or Mk:dim() ~= 4 or Mk:size(1) ~= B or Mk:size(2) ~= 1 or Mk:size(3) ~= S
      or Mk:size(4) ~= S then
    error(("realnet: M must be a [%d,1,%d,%d] mask, got %s"):format(B, S, S,
      core.is_tensor(Mk) and ("[" .. table.concat(Mk:shape(), ",") .. "]") or type(Mk)), 2)
  end
  if self.cfg.afs.method == "afs" and not self.afs:is_selected() then
    error("realnet: AFS channels are not selected yet; call model:select_features(synth, ds) before training", 2)
  end
  local prev = self.training
  self:train(true)
  local ok, res = pcall(function()
    local fa, fn = self:extract_pair(A, I)
    local ba, bn = core.no_grad(function() return self:align(self.afs(fa)), self:align(self.afs(fn)) end)
    local function losses()
      local logits, recon = self:head(ba, true)
      local target = (Mk:squeeze(2):gt(0.5) + 1):long()
      local lc = self.cfg.loss
      local seg = lc.seg == "focal" and core.focal_loss(logits, target, {gamma = lc.gamma})
        or core.cross_entropy(logits, target)
      local mse
      for b, r in ipairs(recon) do
        local m = core.mse_loss(r, bn[b])
        mse = mse and mse + m or m
      end
      return seg * lc.seg_weight + mse * lc.mse_weight, seg, mse
    end
    local loss, seg, mse
    if optimiser then
      loss, seg, mse = losses()
      optimiser:zero_grad()
      local ok_step = finite(loss:item())
      -- a data-parallel optimiser (realnet.dist) makes every rank skip the step when any rank's loss is bad
      if optimiser.all_finite then ok_step = optimiser:all_finite(ok_step) end
      if ok_step then
        loss:backward()
        optimiser:step()
      end
    else
      loss, seg, mse = core.no_grad(losses)
    end
    local lv = loss:item()
    return {loss = lv, seg = seg:item(), mse = mse:item(), finite = finite(lv)}
  end)
  self:train(prev)
  if not ok then error(res, 0) end
  return res
end

--- AFS channel selection (spec 5.2) from synthetic triplets synth:batch(ds, n); opts{batches, batch,
-- progress(i, n)} default to cfg.afs. Returns the per-level channel losses (Lua lists; nil for levels that
-- keep every channel).
function Model:select_features(synth, ds, opts)
  opts = opts or {}
  if type(synth) ~= "table" or type(synth.batch) ~= "function" then
    error("realnet: select_features needs a synthesiser (rn.synth.new{...}) as its first argument", 2)
  end
  local o = {batches = opts.batches or self.cfg.afs.batches, batch = opts.batch or self.cfg.afs.batch,
             progress = opts.progress}
  return self.afs:select(function(x)
    self:check_images(x, "synthetic images")
    return self.backbone:forward(x)
  end, synth, ds, o)
end

--- Moves trainable weights, buffers and the RRS statistics to a device (the backbone stays where it is).
function Model:to(where)
  nn.Module.to(self, where)
  if where ~= "float32" then
    self.selector:to(where)
    self.rrs.running_mean, self.rrs.running_var = self.selector:running_mean(), self.selector:running_var()
  end
  return self
end

-- ------------------------------------------------------------------ state

--- {config = resolved config (a copy), tensors = {name -> tensor}}: trainable weights, AFS indices / projections,
-- RRS and discriminator BN statistics, and (backbone.save, default true) the backbone's weights under
-- "backbone.<engine name>", so a model file rebuilds without the original weights file.
function Model:state()
  local sd = self:state_dict()
  if self.cfg.backbone.save ~= false then
    -- stages after the last one used are not needed to rebuild (resnet18's layer4 would be 8 M weights)
    local unused, last = {}, 0
    local stages = self.backbone:stages()
    for i, s in ipairs(stages) do if s.output then last = i end end
    for i = last + 1, #stages do unused[#unused + 1] = stages[i].name .. "." end
    for name, t in pairs(self.backbone:state_dict()) do
      local keep = true
      for _, p in ipairs(unused) do if name:sub(1, #p) == p then keep = false end end
      if keep then sd["backbone." .. name] = t end
    end
  end
  return {config = config.copy(self.cfg), tensors = sd}
end

--- Restores a state from :state() (or a plain name -> tensor table). A state of a model with another
-- architecture raises an error listing the differing config fields; tensors are matched strictly by name and
-- shape (missing, extra and mis-shaped names are listed).
function Model:load_state(st)
  if type(st) ~= "table" then error("realnet: load_state expects a table from model:state()", 2) end
  local tensors = st.tensors or st
  if st.config then
    local diff = config.arch_diff(self.cfg, st.config)
    if #diff > 0 then
      error("realnet: the state is of another architecture than this model (model vs state):\n  "
        .. table.concat(diff, "\n  "), 2)
    end
  end
  local own, bb = {}, {}
  local nbb = 0
  for name, t in pairs(tensors) do
    local rest = name:match("^backbone%.(.+)$")
    if rest then bb[rest] = t; nbb = nbb + 1 else own[name] = t end
  end
  local ok, err = pcall(self.load_state_dict, self, own)
  if not ok then error(tostring(err):gsub("^[^\n]-:%d+: ", "realnet: "), 2) end
  if nbb > 0 then self.backbone:load_tensors(bb) end
  return self
end

function Model:extra_repr()
  local c = self.cfg
  return ("%s preset, %dx%d, backbone %s, arch %s, rrs %s"):format(c.preset, c.image_size, c.image_size,
    c.backbone.arch, c.recon.arch, tostring(self.selector))
end

return M
