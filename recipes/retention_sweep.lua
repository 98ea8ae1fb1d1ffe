-- Fig. 5: the RRS retention ratio P (the fraction of residual channels the discriminator sees) from 0.05 to 1
-- for the selection modes Max, Avg and Max&Avg, as a line plot with the PatchCore baseline as a flat line.
--
--   realnet run recipes/retention_sweep.lua --scale smoke     # 3 ratios x 3 modes, seconds each
--   realnet run recipes/retention_sweep.lua --scale cpu       # 3 ratios x 3 modes on magnetic_tile, ~1.5 h
--   realnet run recipes/retention_sweep.lua --ratios=0.05,0.25,1 --modes=max,maxavg
--
-- At P = 1 every channel is kept and the three modes train the same model (up to the batch-norm statistics of
-- the ranking), which anchors the right end of the plot.
local E = require "realnet.experiment"

local MODE_NAMES = {max = "Max", avg = "Avg", maxavg = "Max&Avg"}

return E.base{
  name = "retention_sweep",
  title = "Fig. 5: RRS retention ratio P by selection mode",
  modes = {"max", "avg", "maxavg"},
  ratios = {0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0},
  scales = E.scales{smoke = {ratios = {0.1, 0.5, 1.0}}, cpu = {ratios = {0.1, 1 / 3, 1.0}}},
  run = function(cfg, ctx)
    local variants = {}
    for _, mode in ipairs(cfg.modes) do
      if not MODE_NAMES[mode] then error(("modes: '%s' is not max, avg or maxavg"):format(mode), 0) end
      for _, p in ipairs(cfg.ratios) do
        variants[#variants + 1] = {name = ("%s P=%.3g"):format(mode, p),
          set = {["model.rrs.enabled"] = true, ["model.rrs.mode"] = mode, ["model.rrs.ratio"] = p},
          cols = {mode = MODE_NAMES[mode], P = p}}
      end
    end
    return {
      columns = {"variant", "mode", "P", "image_auroc", "pixel_auroc", "aupro", "seconds"},
      rows = E.sweep(ctx, variants),
      plots = {
        {kind = "lines", file = "retention_image_auroc.png", title = "Fig. 5: image AUROC by retention ratio",
         x = "P", y = "image_auroc", series = "mode", xlabel = "retention ratio P", ylabel = "image AUROC"},
        {kind = "lines", file = "retention_pixel_auroc.png", title = "Fig. 5: pixel AUROC by retention ratio",
         x = "P", y = "pixel_auroc", series = "mode", xlabel = "retention ratio P", ylabel = "pixel AUROC"},
      },
    }
  end,
}
