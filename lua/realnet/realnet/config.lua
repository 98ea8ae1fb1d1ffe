--- realnet.realnet.config: RealNet model configurations, the `paper` and `cpu` presets, validation and a text
-- form for model files.
--
--   local cfg = config.resolve{preset = "cpu", recon = {arch = "B"}}   -- preset defaults + overrides
--
-- Fields (every default written out by resolve):
--   preset       "paper" | "cpu" (the base the other fields override)
--   image_size   input side in pixels (square images); features must halve cleanly in the U-Nets
--   seed         initialisation seed of the trainable layers
--   backbone     {arch, layers (1-based stage indices), weights (file, or nil), seed (random init without weights)}
--   afs          {method = "afs" | "rdr" | "rlpr", dims (channels kept per level), batches, batch, seed, eps}
--   recon        {arch = "A" | "B" | "C", ratio (hide_channels_ratio), num_res_blocks, channel_mult,
--                 attention (ds values with attention), head_channels, norm_groups, middle_attention}
--   rrs          {enabled, mode = "maxavg" | "max" | "avg", ratio, counts (nil or {max = k1, avg = k2}),
--                 momentum, eps}
--   disc         {hidden, mid = {c1, c2}, residual_layers, bn_momentum}
--   loss         {seg = "ce" | "focal", gamma, seg_weight, mse_weight}
--   score        {pool (avg-pool side for the image score; default 16 * image_size / 256, at least 1)}
--   train        defaults for trainers: {lr, batch, epochs, normal_ratio, average (per-epoch decay of the weight
--                average the trainer saves; 0 = the last epoch's weights)}
--
-- The cpu preset (measured on the 2-core build machine, see lua/realnet/realnet/init.lua): 128x128 images,
-- ResNet-50 v2 stage 3 alone (1024 channels at /16, an 8x8 map), AFS dims {384}, U-Net width ratio 0.25, one res
-- block per level, channel_mult {1, 2}, attention at ds 2 (the lowest U-Net resolution) and in the middle block,
-- RRS keeping 1/3 of the 384 residual channels, a 64-wide discriminator, the paper's LR 1e-4, a feature-MSE
-- weight of 30, 90 epochs, and the saved weights the running average of the epochs' (trainer.average 0.9). On
-- magnetic_tile (README) each of these beat the first cpu preset (stages 1-3, dims {64, 128, 128}, LR 1e-3, MSE
-- weight 1, last-epoch weights; still pinned by the recipes' cpu scale, lua/realnet/experiment.lua):
-- - LR: at 1e-3 the loss leaves its plateau sooner but image AUROC peaks at epoch 15 and degrades; 1e-4 keeps
--   improving over 30 epochs (0.7865 -> 0.8359 last-epoch image AUROC).
-- - MSE weight 30: the residual of real defects grows with it (0.8359 -> 0.8649).
-- - Stage 3 alone: stage 1's residual alone scores 0.72 image AUROC (noise at /4 that the discriminator then
--   learns from), stage 2's 0.84-0.89, stage 3's 0.95-0.97 (`realnet diagnose`); with DTD opacity 0.1-0.6, 30
--   epochs reach 0.9333 / 0.8331 / 0.6728 with stage 3 alone against 0.9225 / 0.8146 / 0.6995 with stages 2-3,
--   and an epoch takes 25 s instead of 38.
-- - The weight average: at a constant LR the last epoch's image AUROC swings by about 0.01 from epoch to epoch
--   (0.9602 at 60, 0.9711 at 85, 0.9431 at 90); averaging the epochs' weights removes the swing.
-- - 90 epochs: about 40 minutes on 2 idle cores.
local M = {}

local PRESETS = {
  paper = {
    preset = "paper",
    image_size = 256,
    seed = 100,
    backbone = {arch = "wide_resnet50_2", layers = {1, 2, 3, 4}, seed = 0},
    afs = {method = "afs", dims = {256, 512, 512, 256}, batches = 64, batch = 16, seed = 0, eps = 1e-4},
    recon = {arch = "A", ratio = 0.5, num_res_blocks = 2, channel_mult = {1, 2, 4}, attention = {2, 4},
             head_channels = 64, norm_groups = 32, middle_attention = true},
    rrs = {enabled = true, mode = "maxavg", ratio = 1 / 3, momentum = 0.9, eps = 1e-5},
    disc = {hidden = 128, mid = {32, 8}, residual_layers = 2, bn_momentum = 0.1},
    loss = {seg = "ce", gamma = 2, seg_weight = 1, mse_weight = 1},
    score = {},
    train = {lr = 1e-4, batch = 16, epochs = 1000, normal_ratio = 0.5, average = 0},
  },
  cpu = {
    preset = "cpu",
    image_size = 128,
    seed = 100,
    backbone = {arch = "resnet50v2", layers = {3}, seed = 0},
    afs = {method = "afs", dims = {384}, batches = 32, batch = 8, seed = 0, eps = 1e-4},
    recon = {arch = "A", ratio = 0.25, num_res_blocks = 1, channel_mult = {1, 2}, attention = {2},
             head_channels = 32, norm_groups = 32, middle_attention = true},
    rrs = {enabled = true, mode = "maxavg", ratio = 1 / 3, momentum = 0.9, eps = 1e-5},
    disc = {hidden = 64, mid = {32, 8}, residual_layers = 2, bn_momentum = 0.1},
    loss = {seg = "ce", gamma = 2, seg_weight = 1, mse_weight = 30},
    score = {},
    train = {lr = 1e-4, batch = 8, epochs = 90, normal_ratio = 0.5, average = 0.9},
  },
}

M.presets = {"paper", "cpu"}

local copy = require("realnet.config").copy
M.copy = copy

local function is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

--- Deep merge: tables merge by key, lists and scalars replace.
local function merge(base, over)
  for k, v in pairs(over) do
    if type(v) == "table" and type(base[k]) == "table" and not is_list(v) and not is_list(base[k]) then
      merge(base[k], v)
    else
      base[k] = copy(v)
    end
  end
  return base
end

--- The defaults of a preset (a fresh copy).
function M.preset(name)
  local p = PRESETS[name]
  if not p then error(("realnet: unknown preset '%s' (paper or cpu)"):format(tostring(name)), 2) end
  return copy(p)
end

local function fail(msg) error("realnet config: " .. msg, 0) end

local function pos_int(v, what)
  if math.type(v) ~= "integer" or v < 1 then fail(what .. " must be a positive integer, got " .. tostring(v)) end
end

local function nonneg_int(v, what)
  if math.type(v) ~= "integer" or v < 0 then fail(what .. " must be an integer >= 0, got " .. tostring(v)) end
end

local function pos_num(v, what)
  if type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge then
    fail(what .. " must be a positive number, got " .. tostring(v))
  end
end

local function int_list(t, what, min_len)
  if not is_list(t) or #t < (min_len or 1) then fail(what .. " must be a list of positive integers") end
  for i, v in ipairs(t) do pos_int(v, ("%s[%d]"):format(what, i)) end
end

local function one_of(v, what, set)
  for _, s in ipairs(set) do if v == s then return end end
  fail(("%s must be one of %s, got %s"):format(what, table.concat(set, ", "), tostring(v)))
end

--- Checks a resolved config; raises "realnet config: <field> ..." naming the field at fault.
function M.validate(c)
  pos_int(c.image_size, "image_size")
  nonneg_int(c.seed, "seed")
  if type(c.backbone.arch) ~= "string" then fail("backbone.arch must be a string") end
  int_list(c.backbone.layers, "backbone.layers")
  one_of(c.afs.method, "afs.method", {"afs", "rdr", "rlpr"})
  int_list(c.afs.dims, "afs.dims")
  if #c.afs.dims ~= #c.backbone.layers then
    fail(("afs.dims has %d entries but backbone.layers has %d"):format(#c.afs.dims, #c.backbone.layers))
  end
  pos_int(c.afs.batches, "afs.batches")
  pos_int(c.afs.batch, "afs.batch")
  pos_num(c.afs.eps, "afs.eps")
  local r = c.recon
  one_of(r.arch, "recon.arch", {"A", "B", "C"})
  pos_num(r.ratio, "recon.ratio")
  pos_int(r.num_res_blocks, "recon.num_res_blocks")
  int_list(r.channel_mult, "recon.channel_mult")
  if not is_list(r.attention) then fail("recon.attention must be a list of ds values (1, 2, 4, ...)") end
  for i, v in ipairs(r.attention) do pos_int(v, ("recon.attention[%d]"):format(i)) end
  pos_int(r.head_channels, "recon.head_channels")
  pos_int(r.norm_groups, "recon.norm_groups")
  local q = c.rrs
  one_of(q.mode, "rrs.mode", {"maxavg", "max", "avg"})
  if q.counts ~= nil then
    if type(q.counts) ~= "table" then fail("rrs.counts must be {max = k1, avg = k2}") end
    for _, k in ipairs{"max", "avg"} do
      local v = q.counts[k]
      if v ~= nil and (math.type(v) ~= "integer" or v < 0) then fail("rrs.counts." .. k .. " must be an integer >= 0") end
    end
  else
    pos_num(q.ratio, "rrs.ratio")
    if q.ratio > 1 then fail("rrs.ratio must be in (0, 1], got " .. q.ratio) end
  end
  pos_int(c.disc.hidden, "disc.hidden")
  int_list(c.disc.mid, "disc.mid", 2)
  nonneg_int(c.disc.residual_layers, "disc.residual_layers")
  one_of(c.loss.seg, "loss.seg", {"ce", "focal"})
  if c.score.pool ~= nil then pos_int(c.score.pool, "score.pool") end
  return c
end

--- A resolved config: the preset's defaults (cfg.preset, default "cpu") merged with cfg, validated.
-- Fields that are not configuration (backbone userdata, synthesisers) must not be passed here.
function M.resolve(cfg)
  cfg = cfg or {}
  if type(cfg) ~= "table" then error("realnet: config must be a table", 3) end
  local c = M.preset(cfg.preset or "cpu")
  merge(c, cfg)
  local ok, err = pcall(M.validate, c)
  if not ok then error(err, 3) end
  return c
end

--- The image-score pooling side: score.pool, or 16 scaled by image_size / 256 (the paper's 16 at 256).
function M.score_pool(c)
  if c.score.pool then return c.score.pool end
  return math.max(1, math.floor(16 * c.image_size / 256 + 0.5))
end

-- ------------------------------------------------------------------ text form

local function ser(v, out)
  local t = type(v)
  if t == "number" then
    if math.type(v) == "integer" then out[#out + 1] = tostring(v)
    else out[#out + 1] = string.format("%.17g", v) end
  elseif t == "string" then out[#out + 1] = string.format("%q", v)
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "table" then
    out[#out + 1] = "{"
    if is_list(v) then
      for i, e in ipairs(v) do
        if i > 1 then out[#out + 1] = ", " end
        ser(e, out)
      end
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then error("realnet config: keys must be strings, got " .. type(k), 0) end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = ", " end
        out[#out + 1] = k:match("^[%a_][%w_]*$") and k or ("[" .. string.format("%q", k) .. "]")
        out[#out + 1] = " = "
        ser(v[k], out)
      end
    end
    out[#out + 1] = "}"
  else
    error("realnet config: cannot store a " .. t .. " value", 0)
  end
end

--- The config as a Lua table constructor (sorted keys; numbers round-trip exactly).
function M.encode(c)
  local out = {}
  ser(c, out)
  return table.concat(out)
end

--- Parses encode's text in an empty environment (data only); nil, msg when it is not a table constructor.
function M.decode(s)
  if type(s) ~= "string" then return nil, "config text missing" end
  local f, err = load("return " .. s, "=config", "t", {})
  if not f then return nil, err end
  local ok, v = pcall(f)
  if not ok or type(v) ~= "table" then return nil, "config text is not a table" end
  return v
end

--- Fields that fix the model's tensors: two configs that differ in one of them cannot share a state.
M.ARCH_KEYS = {
  "image_size", "backbone.arch", "backbone.layers", "afs.method", "afs.dims", "recon.arch", "recon.ratio",
  "recon.num_res_blocks", "recon.channel_mult", "recon.attention", "recon.head_channels", "recon.norm_groups",
  "recon.middle_attention", "rrs.enabled", "rrs.mode", "rrs.ratio", "rrs.counts", "disc.hidden", "disc.mid",
  "disc.residual_layers",
}

local function get(c, path)
  local v = c
  for part in path:gmatch("[^.]+") do
    if type(v) ~= "table" then return nil end
    v = v[part]
  end
  return v
end

--- The architecture fields where a and b differ, as "field: a vs b" lines.
function M.arch_diff(a, b)
  local out = {}
  for _, k in ipairs(M.ARCH_KEYS) do
    local va, vb = get(a, k), get(b, k)
    local sa = va == nil and "nil" or M.encode(va)
    local sb = vb == nil and "nil" or M.encode(vb)
    if sa ~= sb then out[#out + 1] = ("%s: %s vs %s"):format(k, sa, sb) end
  end
  return out
end

return M
