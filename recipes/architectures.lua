-- Table S4: the reconstruction architectures - A (one U-Net per feature level, the default), B (all levels
-- aligned and reconstructed by one network), C (neighbouring levels in pairs) - with their inference speed
-- (img/s of the whole model on one test batch, this machine, never asserted), trainable parameters and metrics.
--
--   realnet run recipes/architectures.lua --scale smoke
--   realnet run recipes/architectures.lua --scale cpu          # magnetic_tile, ~1 h on 2 cores
--
-- The PatchCore row shows its speed too; it trains no parameters.
local E = require "realnet.experiment"

return E.base{
  name = "architectures",
  title = "Table S4: reconstruction architectures A, B, C",
  archs = {"A", "B", "C"},
  speed = {batch = 8, reps = 3},
  scales = E.scales{},
  run = function(cfg, ctx)
    local variants = {}
    for _, a in ipairs(cfg.archs) do
      variants[#variants + 1] = {name = "arch " .. a, set = {["model.recon.arch"] = a}, cols = {arch = a}}
    end
    local rows = E.sweep(ctx, variants, {baseline_cols = {arch = "-"}})
    for _, r in ipairs(rows) do
      local tcfg = E.variant_config(ctx, {method = r.method})
      local m = E.measure(r.dir, tcfg, cfg.speed)
      r.img_s, r.params_m = m.img_s, r.method == "realnet" and m.params_m or nil
    end
    return {
      columns = {"variant", "arch", "image_auroc", "pixel_auroc", "aupro", "img_s", "params_m", "seconds"},
      rows = rows,
      notes = {"img_s: images per second of inference on this machine (one test batch after a warm-up); "
        .. "params_m: trainable parameters in millions (the frozen backbone excluded)"},
      plots = {{kind = "bars", file = "architectures.png", ylabel = "score",
                metrics = {"image_auroc", "pixel_auroc", "aupro"}},
               {kind = "bars", file = "architectures_speed.png", ylabel = "images per second", title =
                "Table S4: inference speed", metrics = {"img_s"}}},
    }
  end,
}
