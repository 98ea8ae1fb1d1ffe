--- realnet.sdas: strength-controllable diffusion anomaly synthesis (spec 11): the diffusion process, the
-- samplers with strength s and the guided-diffusion U-Net.
--
--   local sdas = require("realnet").sdas
--   local net = sdas.unet{in_channels = 3, model_channels = 32, channel_mult = {1, 2}, attention_resolutions = {2}}
--   local d = sdas.diffusion{steps = 1000, schedule = "linear", learn_sigma = true}
--   local loss = sdas.training_loss(net, d, x0, {generator = g})     -- hybrid loss on a batch in [-1, 1]
--   local s = sdas.sampler(net, {steps = 20, strength = {0.1, 0.2}, method = "ancestral", seed = 1})
--   local x, strengths = s:sample(4, {3, 64, 64})
local core = require "realnet.core"
local unet = require "realnet.sdas.unet"

local M = {}

M.UNet = unet.UNet
M.unet = unet.new
M.timestep_embedding = unet.timestep_embedding

--- diffusion{steps = 1000, schedule = "linear" | "cosine", learn_sigma = true, respace = nil | "ddimN" |
-- "a,b,c" | {a, b, c}}: the process as userdata (see lua/bind_sdas.c for its methods).
function M.diffusion(opts) return core.sdas_diffusion(opts or {}) end

M.normal_kl = core.sdas_normal_kl
M.discretized_gaussian_log_likelihood = core.sdas_discretized_gaussian_log_likelihood

--- sampler(model, opts{steps = 20 | respace, diffusion, base_steps = 1000, schedule, learn_sigma = true,
-- strength = s | {a, b}, per_image = false, method = "ancestral" | "ddim", sigma = "beta" | "beta_tilde" |
-- "learned", eta = 0, clip = true, seed, stream, device}). model is any callable model(x, tau[, y]).
function M.sampler(model, opts)
  opts = opts or {}
  local d = opts.diffusion
  if d == nil then
    local steps = opts.steps or 20
    if math.type(steps) ~= "integer" or steps < 2 then
      error("sdas.sampler: opts.steps must be an integer >= 2, got " .. tostring(steps), 2)
    end
    d = core.sdas_diffusion { steps = opts.base_steps or 1000, schedule = opts.schedule, respace = opts.respace
      or ("ddim" .. steps), learn_sigma = opts.learn_sigma ~= false }
  end
  return core.sdas_sampler(model, d, opts)
end

--- training_loss(model, diffusion, x0, opts{y, generator | seed}) -> loss, {mse = [B], vb = [B], t = [B]}:
-- t ~ U{0..K-1}, noise ~ N(0, I), x_t = q_sample(x0, t, noise), then the hybrid loss of model(x_t, tau[, y]).
function M.training_loss(model, d, x0, opts)
  opts = opts or {}
  local g = opts.generator or (opts.seed and core.generator(opts.seed, opts.stream or 0)) or nil
  local ro = g and { generator = g } or nil
  local B = x0:shape()[1]
  local K = d:steps()
  local t = core.randint(0, K - 1, { B }, ro)
  local dev = x0:device()
  local noise = core.randn(x0:shape(), ro):to(dev)      -- drawn on the host: the same numbers on any device
  local xt = core.no_grad(function() return d:q_sample(x0, t, noise) end)
  local map = d:timesteps()
  local tau = {}
  for i, v in ipairs(t:totable()) do tau[i] = map[v + 1] end
  local out = model(xt, core.tensor(tau):to(dev), opts.y)
  local loss, mse, vb = d:hybrid_loss(out, x0, xt, t, noise)
  return loss, { mse = mse, vb = vb, t = t }
end

-- Training, sampling, presets and warm start live in their own modules (loaded on first use: they require
-- this one). rn.sdas.load_run(dir) -> {net, cfg, classes, ...}; rn.sdas.train.run(cfg, opts); rn.sdas.sample.run(o).
local lazy = {train = "realnet.sdas.train", sample = "realnet.sdas.sample", presets = "realnet.sdas.presets",
              warmstart = "realnet.sdas.warmstart", grid = "realnet.sdas.grid"}
setmetatable(M, {__index = function(t, k)
  if lazy[k] then
    local mod = require(lazy[k])
    rawset(t, k, mod)
    return mod
  end
end})

--- load_run(dir, opts{weights = "ema" | "raw"}): a trained SDAS run's U-Net (eval mode) and config.
function M.load_run(dir, opts) return require("realnet.sdas.sample").load_run(dir, opts) end

return M
