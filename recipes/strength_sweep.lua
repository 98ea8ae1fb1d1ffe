-- Table 5b: the SDAS strength s of the SIA images RealNet is trained with: s = 0, 0.1, 0.2 and s ~ U[0.1, 0.2]
-- (the paper's best), beside the PatchCore baseline.
--
--   realnet run recipes/strength_sweep.lua --scale smoke      # a random-init SDAS U-Net stands in (pipeline check)
--   realnet sdas train --data ../shared/data --category magnetic_tile --out runs/sdas_mt   # once, ~1 h
--   realnet run recipes/strength_sweep.lua --scale cpu --sdas.run runs/sdas_mt             # ~1.5 h more
--   realnet run recipes/strength_sweep.lua --scale cpu --folders=S0,S01,S02,U  # images sampled beforehand
--
-- The SIA images of each strength are sampled once into RUNDIR/inputs/sia/ (rn.sdas.sample from the SDAS run:
-- ancestral, the noise scaled by sqrt(1 + s)); `folders` (one per strength, in order) uses images sampled
-- elsewhere instead, e.g. by `realnet sdas sample`.
local E = require "realnet.experiment"

return E.base{
  name = "strength_sweep",
  title = "Table 5b: SDAS strength s of the SIA images",
  strengths = {"0", "0.1", "0.2", "0.1-0.2"},
  folders = {},
  sdas = E.SDAS,
  scales = E.scales{cpu = {sdas = {trained_only = true, images = 200}},
                    paper = {sdas = {trained_only = true, images = 10000}}},
  run = function(cfg, ctx)
    if #cfg.folders > 0 and #cfg.folders ~= #cfg.strengths then
      error(("folders: %d given for %d strengths (one folder per strength, in order)"):format(#cfg.folders,
        #cfg.strengths), 0)
    end
    local variants, notes = {}, {}
    for i, text in ipairs(cfg.strengths) do
      local _, label = E.strength(text)
      local dir, note = E.sia_dir(ctx, text, cfg.folders[i])
      if note then notes[1] = note end
      variants[#variants + 1] = {name = "s=" .. label, set = {["synth.source"] = "sia", ["synth.sia"] = dir},
                                 cols = {strength = label}}
    end
    return {
      columns = {"variant", "strength", "image_auroc", "pixel_auroc", "aupro", "seconds"},
      rows = E.sweep(ctx, variants, {baseline_cols = {strength = "-"}}),
      notes = notes,
      plots = {{kind = "bars", file = "strength_sweep.png", ylabel = "score",
                metrics = {"image_auroc", "pixel_auroc", "aupro"}}},
    }
  end,
}
