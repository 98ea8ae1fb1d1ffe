--- realnet.realnet: the RealNet model - AFS, reconstruction U-Nets, RRS, discriminator - with training steps,
-- inference and model files.
--
--   local rn = require "realnet"
--   local model = rn.realnet.new{preset = "cpu", backbone = {weights = "resnet50v2_imagenet_stages1-3.safetensors"}}
--   model:select_features(synth, ds)                 -- AFS (spec 5), once before training
--   local opt = rn.optim.adam(model:parameters(), {lr = model.cfg.train.lr})
--   local r = model:train_step(A, I, M, opt)         -- {loss = , seg = , mse = , finite = }
--   local maps, scores = model:forward(x)            -- [B,1,S,S] probabilities, [B] image scores
--   rn.realnet.save("model.h5", model, {epoch = 10}) -- atomic HDF5; rn.realnet.load("model.h5") rebuilds it
--
-- new(cfg): cfg is merged over the preset cfg.preset ("cpu" by default, or "paper"); see
-- realnet.realnet.config for every field. cfg.backbone may also be a backbone userdata (rn.backbone(...)); its
-- arch and output stages then fill backbone.arch / backbone.layers.
--
-- Architectures (recon.arch, paper Table S4): "A" one U-Net per feature level (default); "B" all levels
-- upsampled to the finest level and reconstructed by one U-Net; "C" neighbouring levels paired (1+2, 3+4, ...).
-- Ablations: afs.method "afs" | "rdr" | "rlpr"; rrs.enabled; rrs.mode "maxavg" | "max" | "avg"; rrs.ratio or
-- rrs.counts = {max = k1, avg = k2}; loss.seg "ce" | "focal".
--
-- Image score: max over the stride-1 average pool of the probability map with side score.pool, by default
-- 16 * image_size / 256 (the paper's 16 at 256; 8 for the cpu preset's 128).
--
-- Cost of the cpu preset (stage 3 alone, AFS dims {384}; 2026-11-29): 25-31 s per epoch of magnetic_tile (85 steps
-- of batch 8, DTD synthesis, half-normal batches), 42 min for its 90 epochs with AFS and the threshold on 2 idle
-- cores. With stages 2-3 and dims {128, 384} an epoch took 38 s.
-- Cost of the first cpu preset (stages 1-3, dims {64, 128, 128}, which the recipes' cpu scale still uses),
-- measured on the shared 2-core build machine with OMP_WAIT_POLICY=passive (without it,
-- OpenMP threads spin-waiting on the oversubscribed machine made every step 3-5x slower): one train_step of batch 8
-- with every sample synthetic takes about 1.2 s (backbone on 16 images 0.55 s, reconstruction + RRS +
-- discriminator forward 0.15 s, backward 0.5 s, Adam 0.01 s); normal samples reuse A's backbone features, so a
-- half-normal batch costs about 0.3 s less. A loop with DTD synthesis and half-normal batches ran 0.93 to 1.5 s/step
-- depending on the machine's load (5 to 8 images/s; 96 steps per epoch of magnetic_tile's 762 images), AFS selection 16 batches in 15 s,
-- inference 8 images in 0.3 s. The paper preset builds 518.24 M reconstruction + 5.87 M discriminator
-- parameters (spec 6-7 exactly) and is meant for a GPU.
local core = require "realnet.core"
local state = require "realnet.state"
local config = require "realnet.realnet.config"
local model = require "realnet.realnet.model"

local M = {
  config = config,
  Model = model.Model,
  unet = require "realnet.realnet.unet",
  afs = require "realnet.realnet.afs",
  disc = require "realnet.realnet.disc",
  FORMAT = 1, -- realnet_model attribute of model files
}

--- The resolved defaults of a preset ("cpu" or "paper").
function M.defaults(preset) return config.resolve{preset = preset or "cpu"} end

local function is_backbone(v) return type(v) == "userdata" and type(v.stages) == "function" end

--- new(cfg [, opts{backbone = bb}]) -> model
function M.new(cfg, opts)
  cfg = cfg or {}
  if type(cfg) ~= "table" then error("realnet.new: expected a config table, got " .. type(cfg), 2) end
  local bb = opts and opts.backbone
  local plain = {}
  for k, v in pairs(cfg) do plain[k] = v end
  if is_backbone(plain.backbone) then
    bb = plain.backbone
    local layers = {}
    for i, s in ipairs(bb:stages()) do if s.output then layers[s.output] = i end end
    plain.backbone = {arch = bb:arch(), layers = layers}
  end
  local c = config.resolve(plain)
  if bb then
    c.backbone.arch = bb:arch()
    c.backbone.weights = nil
  else
    local ok, b = pcall(core.backbone, c.backbone.arch, {weights = c.backbone.weights, layers = c.backbone.layers,
                                                         seed = c.backbone.seed})
    if not ok then error("realnet.new: " .. tostring(b), 2) end
    bb = b
  end
  local ok, m = pcall(model.Model, c, bb)
  if not ok then error(m, 2) end
  return m
end

--- save(path, model [, attrs{key = number | string}]): the model's state as HDF5 (rn.save layout, atomic), with
-- root attributes realnet_model (format version), realnet_config (the resolved config as text), method.
function M.save(path, m, attrs)
  if type(m) ~= "table" or type(m.state) ~= "function" then error("realnet.save: expected a RealNet model", 2) end
  local st = m:state()
  local a = {}
  for k, v in pairs(attrs or {}) do a[k] = v end
  a.realnet_model = M.FORMAT
  a.realnet_config = config.encode(st.config)
  a.method = "realnet"
  state.save(path, st.tensors, {attrs = a})
end

--- load(path) -> model, attrs. Rebuilds the model from the file's config (the backbone from the weights in the
-- file, or from backbone.weights when the file has none) and loads every tensor strictly.
function M.load(path)
  if type(path) ~= "string" then error("realnet.load: path must be a string", 2) end
  local ok, sd, names, attrs = pcall(state.load, path)
  if not ok then error("realnet.load: " .. tostring(sd):gsub("^[^\n]-:%d+: ", ""), 2) end
  if not sd then error("realnet.load: " .. tostring(names), 2) end
  attrs = attrs or {}
  if not attrs.realnet_config then
    local what = attrs.method and ("a '" .. tostring(attrs.method) .. "' model") or "a plain state file"
    error(("realnet.load: %s is %s, not a RealNet model (no realnet_config attribute)"):format(path, what), 2)
  end
  if math.type(attrs.realnet_model) ~= "integer" and type(attrs.realnet_model) ~= "number"
      or attrs.realnet_model > M.FORMAT then
    error(("realnet.load: %s has model format %s; this build reads up to %d"):format(path,
      tostring(attrs.realnet_model), M.FORMAT), 2)
  end
  local cfg, err = config.decode(attrs.realnet_config)
  if not cfg then error(("realnet.load: %s: bad realnet_config attribute (%s)"):format(path, err), 2) end
  local has_bb = false
  for _, n in ipairs(names) do if n:match("^backbone%.") then has_bb = true; break end end
  local bopts = {layers = cfg.backbone.layers, seed = cfg.backbone.seed}
  if not has_bb then bopts.weights = cfg.backbone.weights end
  local okb, bb = pcall(core.backbone, cfg.backbone.arch, bopts)
  if not okb then error("realnet.load: " .. tostring(bb), 2) end
  local okm, m = pcall(model.Model, config.resolve(cfg), bb)
  if not okm then error("realnet.load: " .. tostring(m), 2) end
  local okl, e = pcall(m.load_state, m, {config = cfg, tensors = sd})
  if not okl then error(("realnet.load: %s: %s"):format(path, tostring(e):gsub("^[^\n]-:%d+: ", "")), 2) end
  return m, attrs
end

return M
