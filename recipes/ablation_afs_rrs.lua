-- Table 5a: feature selection (AFS vs random RDR vs RLPR) crossed with the reconstruction residual selection
-- (RRS on / off), beside the PatchCore baseline.
--
--   realnet run recipes/ablation_afs_rrs.lua --scale smoke          # seconds: demo data, tiny random-init model
--   realnet run recipes/ablation_afs_rrs.lua --scale cpu            # magnetic_tile, ResNet-50 v2, ~2 h on 2 cores
--   realnet run recipes/ablation_afs_rrs.lua --scale paper --data DIR --category bottle --weights WRN50.h5
--
-- Without RRS the discriminator sees every residual channel (model.rrs.enabled = false); the paper reports the
-- three selections each with and without it.
local E = require "realnet.experiment"

return E.base{
  name = "ablation_afs_rrs",
  title = "Table 5a: AFS / RDR / RLPR, with and without RRS",
  selections = {"afs", "rdr", "rlpr"},
  rrs = {true, false},
  scales = E.scales{},
  run = function(cfg, ctx)
    local variants = {}
    for _, sel in ipairs(cfg.selections) do
      for _, on in ipairs(cfg.rrs) do
        variants[#variants + 1] = {name = sel .. (on and "+rrs" or ""),
          set = {["model.afs.method"] = sel, ["model.rrs.enabled"] = on},
          cols = {selection = sel:upper(), rrs = on and "yes" or "no"}}
      end
    end
    return {
      columns = {"variant", "selection", "rrs", "image_auroc", "pixel_auroc", "aupro", "f1_max", "seconds"},
      rows = E.sweep(ctx, variants, {baseline_cols = {selection = "-", rrs = "-"}}),
      plots = {{kind = "bars", file = "ablation_afs_rrs.png", ylabel = "score",
                metrics = {"image_auroc", "pixel_auroc", "aupro"}}},
    }
  end,
}
