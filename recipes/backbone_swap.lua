-- Table S3: RealNet on other backbones. resnet50v2, mobilenetv2 and resnet18 use the ImageNet weights in
-- ../shared/weights; wide_resnet50_2, resnet34 and efficientnet_b4 (the paper's) run when their weights are
-- given (--weights.<arch>=FILE); a backbone without weights is skipped with a note. Each backbone gets its own
-- PatchCore row. AFS keeps min(the preset's dims, the stage's channels) per level.
--
--   realnet run recipes/backbone_swap.lua --scale smoke       # random-init resnet18, mobilenetv2, resnet50v2
--   realnet run recipes/backbone_swap.lua --scale cpu         # magnetic_tile; ~2 h for the three at hand
--   realnet run recipes/backbone_swap.lua --scale cpu --weights.wide_resnet50_2=wrn50.h5
--   realnet -i recipes/backbone_swap.lua --scale smoke        # then results, replot(), compare() in the REPL
local E = require "realnet.experiment"

return E.base{
  name = "backbone_swap",
  title = "Table S3: backbones",
  backbones = {"resnet50v2", "mobilenetv2", "resnet18", "wide_resnet50_2", "resnet34", "efficientnet_b4"},
  weights = {
    resnet50v2 = E.shared("weights/resnet50v2_imagenet_stages1-3.safetensors"),
    mobilenetv2 = E.shared("weights/mobilenetv2_imagenet_bnfolded.safetensors"),
    resnet18 = E.shared("weights/resnet18_imagenet_bnfolded_conv1-layer3.safetensors"),
    _types = {resnet50v2 = "path", mobilenetv2 = "path", resnet18 = "path", wide_resnet50_2 = "path",
              resnet34 = "path", efficientnet_b4 = "path"},
  },
  random_init = false, -- true: every listed backbone runs randomly initialised (smoke)
  flags = {weights = false},
  scales = E.scales{smoke = {backbones = {"resnet18", "mobilenetv2", "resnet50v2"}, random_init = true}},
  run = function(cfg, ctx)
    local rn = require "realnet"
    local layers = cfg.train.model.backbone.layers
    local dims = cfg.train.model.afs.dims
    local rows, notes = {}, {}
    local todo = {}
    for _, arch in ipairs(cfg.backbones) do
      local w = cfg.weights[arch]
      if cfg.random_init or (w and rn.file_type(w) == "file") then
        todo[#todo + 1] = {arch = arch, weights = not cfg.random_init and w or nil}
      else
        local why = w and ("weights file %s not found"):format(w) or "no weights"
        notes[#notes + 1] = ("%s skipped: %s (pass --weights.%s=FILE)"):format(arch, why, arch)
        rows[#rows + 1] = {variant = arch, backbone = arch, method = "skipped", afs_dims = "-"}
        print("note: " .. notes[#notes])
      end
    end
    for i, b in ipairs(todo) do
      local ch = E.backbone_channels(b.arch, layers)
      local d = {}
      for k = 1, #layers do d[k] = math.min(dims[k], ch[k]) end
      local set = {["model.backbone.arch"] = b.arch, ["model.afs.dims"] = d,
                   ["model.backbone.weights"] = b.weights or "none"}
      local cols = {backbone = b.arch, afs_dims = table.concat(d, "/")}
      print(("\n[%d/%d] %s%s"):format(i, #todo, b.arch, ctx.seed_label))
      local row = E.train_eval(ctx, b.arch, E.variant_config(ctx, set))
      for k, v in pairs(cols) do row[k] = v end
      rows[#rows + 1] = row
      if cfg.baseline then
        set["method"] = "patchcore"
        rows[#rows + 1] = E.baseline(ctx, set, {variant = "patchcore " .. b.arch, backbone = b.arch, afs_dims = "-"})
      end
    end
    if cfg.random_init then notes[#notes + 1] = "random_init: every backbone is randomly initialised (smoke scale)" end
    return {
      columns = {"variant", "backbone", "method", "afs_dims", "image_auroc", "pixel_auroc", "aupro", "seconds"},
      rows = rows, notes = notes,
      plots = {{kind = "bars", file = "backbone_swap.png", ylabel = "score",
                metrics = {"image_auroc", "pixel_auroc", "aupro"}}},
    }
  end,
}
