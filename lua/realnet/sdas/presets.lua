--- realnet.sdas.presets: the SDAS diffusion training presets (spec 11.1 / 11.3 / 12).
--
--   local presets = require "realnet.sdas.presets"
--   local p = presets.get("cpu")      -- {model = {...}, diffusion = {...}, trainer = {...}} (a fresh copy)
--
-- `paper`: the authors' diffusion.yaml (guided-diffusion ADM at 256x256, ~553 M parameters), meant for a GPU.
--   The authors train 4 GPUs x batch 5 with accumulate 3 (an effective batch of 60) for ~50 k iterations
--   (issue #47); here trainer.batch is per process, so the default effective batch is 5 x 3 = 15.
-- `cpu`: a small U-Net at 64x64 (width 32, channel_mult {1, 2, 2, 2}, one res block per level, attention at
--   8x8 only: 1.92 M parameters) for ../shared/data/magnetic_tile (762 normal images) on 2 cores.
--   Cost, measured 2026-11-28 on this project's 2-core machine: steps 1251-3000 of `realnet sdas train --preset
--   cpu` on magnetic_tile ran alone at 0.99 s per optimiser step of batch 8 (hybrid loss forward + backward,
--   clipping, Adam, EMA, validation grids included), so the 3000 steps (24 k images, ~31 epochs) take about 50 min;
--   while the machine was shared, 1.4-4 s per step.
local M = {}

local PRESETS = {
  paper = {
    model = {image_size = 256, model_channels = 256, num_res_blocks = 2, channel_mult = {1, 1, 2, 2, 4, 4},
             attention_resolutions = {32, 16, 8}, num_head_channels = 64, use_scale_shift_norm = true,
             resblock_updown = true, dropout = 0.0},
    diffusion = {steps = 1000, schedule = "linear", val_respace = "ddim20"},
    trainer = {steps = 50000, batch = 5, accumulate = 3, lr = 1e-4, clip = 1.0, ema = 0.9999, seed = 100,
               checkpoint_every = 1000, val_every = 5000, val_n = 6},
  },
  cpu = {
    model = {image_size = 64, model_channels = 32, num_res_blocks = 1, channel_mult = {1, 2, 2, 2},
             attention_resolutions = {8}, num_head_channels = 32, use_scale_shift_norm = true,
             resblock_updown = true, dropout = 0.0},
    diffusion = {steps = 1000, schedule = "linear", val_respace = "ddim20"},
    -- EMA 0.999 rather than 0.9999: at 3000 steps a 10 000-step average would still be mostly the initial weights
    trainer = {steps = 3000, batch = 8, accumulate = 1, lr = 2e-4, clip = 1.0, ema = 0.999, seed = 100,
               checkpoint_every = 250, val_every = 1000, val_n = 6},
  },
}

M.NAMES = {"cpu", "paper"}

local copy = require("realnet.config").copy

--- get(name) -> a deep copy of the preset; raises naming the valid presets for an unknown name.
function M.get(name)
  local p = PRESETS[name or "cpu"]
  if not p then
    error(("sdas: unknown preset '%s' (%s)"):format(tostring(name), table.concat(M.NAMES, ", ")), 0)
  end
  return copy(p)
end

return M
