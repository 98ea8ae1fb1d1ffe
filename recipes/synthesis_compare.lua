-- Table 1: the anomaly source RealNet is trained with - SIA (SDAS images, s ~ U[0.1, 0.2]), DTD textures,
-- NSA (Poisson-blended patches of other normal images) and CutPaste - beside the PatchCore baseline.
--
--   realnet run recipes/synthesis_compare.lua --scale smoke   # demo textures; a random-init SDAS U-Net for SIA
--   realnet run recipes/synthesis_compare.lua --scale cpu --sdas.run runs/sdas_mt   # DTD: ../shared/data/dtd_subset
--   realnet run recipes/synthesis_compare.lua --sources=dtd,cutpaste  # a subset
--
-- --sia DIR (sia.dir) takes a folder of SDAS images (`realnet sdas sample` writes one); without it they are
-- sampled from the SDAS run --sdas.run DIR as in strength_sweep. --dtd DIR (dtd.dir) takes DTD's layout; empty at smoke scale, where
-- fabric and tile demo surfaces stand in.
local E = require "realnet.experiment"

return E.base{
  name = "synthesis_compare",
  title = "Table 1: anomaly synthesis sources",
  sources = {"sia", "dtd", "nsa", "cutpaste"},
  sia = {dir = "", strength = "0.1-0.2"},
  dtd = {dir = E.shared("data/dtd_subset")},
  sdas = E.SDAS,
  scales = E.scales{smoke = {dtd = {dir = ""}}, cpu = {sdas = {trained_only = true, images = 200}},
                    paper = {sdas = {trained_only = true, images = 10000}}},
  flags = {sia = "sia.dir"},
  run = function(cfg, ctx)
    local names = {sia = "SIA", dtd = "DTD", nsa = "NSA", cutpaste = "CutPaste"}
    local variants, notes = {}, {}
    for _, src in ipairs(cfg.sources) do
      if not names[src] then error(("sources: '%s' is not sia, dtd, nsa or cutpaste"):format(src), 0) end
      local set = {["synth.source"] = src}
      if src == "sia" then
        local dir, note = E.sia_dir(ctx, cfg.sia.strength, cfg.sia.dir)
        set["synth.sia"] = dir
        if note then notes[#notes + 1] = note end
      elseif src == "dtd" then
        local dir = cfg.dtd.dir
        if dir == "" then
          dir = E.textures(ctx.root_dir .. "/inputs/textures", {size = cfg.data.demo_size, train = 6})
          notes[#notes + 1] = "DTD here: fabric and tile demo surfaces stand in for the texture photos"
        end
        set["synth.dtd"] = dir
      end
      variants[#variants + 1] = {name = src, set = set, cols = {source = names[src]}}
    end
    return {
      columns = {"variant", "source", "image_auroc", "pixel_auroc", "aupro", "seconds"},
      rows = E.sweep(ctx, variants, {baseline_cols = {source = "-"}}),
      notes = notes,
      plots = {{kind = "bars", file = "synthesis_compare.png", ylabel = "score",
                metrics = {"image_auroc", "pixel_auroc", "aupro"}}},
    }
  end,
}
