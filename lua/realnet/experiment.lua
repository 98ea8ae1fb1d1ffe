--- realnet.experiment: the steps recipes (recipes/*.lua) are made of - data at hand, one trained and evaluated
-- variant per row, the PatchCore baseline beside them, texture and SIA image folders, speed and size.
--
--   local E = require "realnet.experiment"
--   local rows = E.sweep(ctx, {{name = "rdr", set = {["model.afs.method"] = "rdr"}, cols = {selection = "RDR"}}})
--   -- each row: {variant, image_auroc, pixel_auroc, aupro, f1_max, seconds, dir, ...cols}
--
-- ctx is the runner's context (realnet.recipe): {cfg, dir (where variants go), root_dir (the recipe's run
-- directory), seed, scale}. A variant trains into ctx.dir/<name>/ with realnet.trainer and is measured by
-- realnet.evaluator; a variant directory whose metrics.json exists and whose config.lua equals the variant's
-- config is reused, so an interrupted recipe continues where it stopped when run again with the same --out.
local core = require "realnet.core"
local config = require "realnet.config"
local trainer = require "realnet.trainer"
local evaluator = require "realnet.evaluator"
local predictor = require "realnet.predictor"
local json = require "realnet.json"
local rundir = require "realnet.rundir"

local M = {}

local function clean(msg) return (tostring(msg):gsub("^[^\n]-%.lua:%d+: ", "")) end

--- The source tree (lua/, scripts/, recipes/) and the shared folder beside it.
function M.home() return os.getenv("REALNET_HOME") or require("realnet").home or "." end
function M.shared(rel) return M.home() .. "/../shared/" .. rel end

-- ------------------------------------------------------------------ scales

-- smoke: a random-init ResNet-18 at 32x32 with every width cut to a few channels; seconds per variant.
M.SMOKE = {
  preset = "cpu",
  data = {demo = true, root = ""},
  train = {
    model = {image_size = 32, backbone = {arch = "resnet18", layers = {1, 2, 3}},
             afs = {dims = {8, 16, 16}, batches = 1, batch = 4}, disc = {hidden = 8, mid = {8, 8}},
             recon = {channel_mult = {1}, attention = {1}, norm_groups = 8, head_channels = 8}},
    trainer = {epochs = 1, batch = 4, checkpoint_every = 1},
    patchcore = {batch = 4},
  },
}

-- cpu: the cpu preset's 128x128 ResNet-50 v2 (ImageNet weights) on magnetic_tile, 10 epochs a variant, with the
-- model of the first cpu preset pinned (stages 1-3, AFS dims {64, 128, 128}, LR 1e-3, feature-MSE weight 1, the
-- last epoch's weights rather than their average):
-- the README's recipe tables were measured with it and rerun the same. About 100 s per epoch on 2 cores, so a
-- variant takes about 17 minutes.
M.CPU = {
  preset = "cpu",
  data = {demo = false, root = M.shared("data"), category = "magnetic_tile"},
  train = {model = {backbone = {layers = {1, 2, 3},
                                weights = M.shared("weights/resnet50v2_imagenet_stages1-3.safetensors")},
                    afs = {dims = {64, 128, 128}}, loss = {mse_weight = 1}},
           trainer = {epochs = 10, lr = 1e-3, average = 0}},
}

-- paper: the paper preset (256x256, WRN-50-2 layers 1-4, 1000 epochs) for a GPU; data and weights are given.
M.PAPER = {preset = "paper", data = {demo = false, root = "", category = ""}}

local function deep_merge(dst, src)
  for k, v in pairs(src) do
    if type(v) == "table" and not config.is_list(v) and type(dst[k]) == "table" then deep_merge(dst[k], v)
    else dst[k] = config.copy(v) end
  end
  return dst
end

--- The three scales with a recipe's additions merged in: extra = {smoke = {...}, cpu = {...}, paper = {...}}.
function M.scales(extra)
  extra = extra or {}
  return {smoke = deep_merge(config.copy(M.SMOKE), extra.smoke or {}),
          cpu = deep_merge(config.copy(M.CPU), extra.cpu or {}),
          paper = deep_merge(config.copy(M.PAPER), extra.paper or {})}
end

--- The fields every recipe shares (merged under the recipe's own): data, seed, eval, baseline.
function M.base(fields)
  local b = {
    seed = 100,
    baseline = true, -- a PatchCore row beside the RealNet rows
    data = {demo = true, root = "", dataset = "mvtec", category = "demo_surface",
            demo_seed = 1, demo_size = 64, demo_train = 10, demo_test_good = 3, demo_test_defect = 1,
            _types = {root = "path", dataset = "choice:mvtec|visa|mpdd|btad|folder"}},
    eval = {batch = 8, overlays = false, maps = false},
    train = {},
  }
  return deep_merge(b, fields or {})
end

-- ------------------------------------------------------------------ data

local function abspath(p) return p ~= "" and trainer.abspath(p) or p end

--- The dataset root of a recipe run (made from the embedded demo generator when data.demo and the category is
-- not there yet). Raises naming the flag when a real dataset is needed and missing.
function M.prepare_data(cfg, ctx)
  local d = cfg.data
  if d.demo then
    local root = d.root ~= "" and d.root or (ctx.root_dir .. "/inputs/data")
    local cat = root .. "/" .. d.category
    if core.file_type(cat) ~= "directory" then
      print(("making the demo dataset in %s"):format(cat))
      core.demo_data.make(root, {seed = d.demo_seed, size = d.demo_size, train = d.demo_train,
        test_good = d.demo_test_good, test_defect = d.demo_test_defect, category = d.category})
    else
      print(("using the demo dataset in %s"):format(cat))
    end
    return abspath(root)
  end
  if d.root == "" then
    error(("no dataset: scale '%s' needs --data DIR (data.root) and --category NAME"):format(ctx.scale or "?"), 0)
  end
  if core.file_type(d.root) ~= "directory" then error(("data.root %s is not a directory"):format(d.root), 0) end
  return abspath(d.root)
end

--- Texture images in DTD's layout (dir/<kind>/*.png) made from demo surfaces of other kinds, so the DTD source
-- needs no download; kept when dir exists. opts {size, train, kinds, seed}. Returns dir.
function M.textures(dir, opts)
  opts = opts or {}
  if core.file_type(dir) == "directory" then return dir end
  print(("making texture images for the anomaly synthesis in %s"):format(dir))
  local src = dir .. "-src"
  for i, kind in ipairs(opts.kinds or {"fabric", "tile"}) do
    local cdir = core.demo_data.make(src, {seed = (opts.seed or 100) + i, size = opts.size or 64,
      train = opts.train or 8, texture = kind, category = kind, test_good = 1, test_defect = 1, overwrite = true})
    rundir.mkdir(dir .. "/" .. kind)
    for _, name in ipairs(core.listdir(cdir .. "/train/good") or {}) do
      assert(os.rename(cdir .. "/train/good/" .. name, ("%s/%s/%s"):format(dir, kind, name)))
    end
  end
  return dir
end

local function count_images(dir)
  local n = 0
  for _, name in ipairs(core.listdir(dir) or {}) do
    if name:match("%.png$") or name:match("%.jpe?g$") then n = n + 1 end
  end
  return n
end

--- A folder of images sampled with strength s (a number or {a, b}) from a randomly initialised SDAS U-Net: a
-- stand-in that exercises the SIA pipeline without a trained model (trained ones go through rn.sdas.sample).
-- opts {n, size, strength, seed, steps, batch, unet = {...} (realnet.sdas.unet options)}. Kept when dir
-- already holds n images. Returns dir.
function M.sia_images(dir, opts)
  if count_images(dir) >= opts.n then return dir end
  local sdas = require "realnet.sdas"
  local uo = config.copy(opts.unet or {})
  uo.seed = uo.seed or opts.seed
  local ok, net = pcall(sdas.unet, uo)
  if not ok then error("sdas: " .. clean(net), 0) end
  net:eval()
  local s = sdas.sampler(net, {steps = opts.steps or 20, strength = opts.strength, seed = opts.seed or 0,
                               method = "ancestral"})
  rundir.mkdir(dir)
  local label = type(opts.strength) == "table" and ("U[%g, %g]"):format(opts.strength[1], opts.strength[2])
    or ("%g"):format(opts.strength)
  print(("sampling %d images (s = %s) from a random-init SDAS U-Net into %s"):format(opts.n, label, dir))
  local done, B = 0, opts.batch or 8
  while done < opts.n do
    local b = math.min(B, opts.n - done)
    local x = core.no_grad(function() return s:sample(b, {3, opts.size, opts.size}) end)
    local u8 = core.synth_core.from_chw(((x + 1) * 0.5):clamp(0, 1), "unit")
    for k = 1, b do core.image.write(("%s/%05d.png"):format(dir, done + k - 1), u8:select(1, k):contiguous()) end
    done = done + b
  end
  return dir
end

-- SIA images come from SDAS. `run` names a trained SDAS run (realnet sdas train): its U-Net samples the
-- category's images through rn.sdas.sample.run (class: the run's class to sample, default the recipe's
-- category). Without one, trained_only = false lets a randomly initialised U-Net of shape `unet` stand in
-- (smoke scale: it exercises the pipeline, its images are noise-like); trained_only = true (cpu, paper) makes
-- that an error.
M.SDAS = {steps = 20, images = 16, batch = 8, trained_only = false, class = "",
          unet = {model_channels = 8, num_res_blocks = 1, channel_mult = {1, 2}, attention_resolutions = {2},
                  num_head_channels = 8, norm_groups = 8},
          _types = {run = "path"}}

--- A strength as text ("0.1", or "0.1-0.2" for s ~ U[0.1, 0.2]) -> s or {a, b}, and its label.
function M.strength(text)
  local a, b = tostring(text):match("^%s*([%d%.eE+-]+)%s*%-%s*([%d%.eE+-]+)%s*$")
  if a and tonumber(a) and tonumber(b) then
    return {tonumber(a), tonumber(b)}, ("U[%g, %g]"):format(tonumber(a), tonumber(b))
  end
  local s = tonumber(text)
  if not s then error(("strength '%s' is neither a number nor a range a-b"):format(tostring(text)), 0) end
  return s, ("%g"):format(s)
end

--- The folder of SIA images for a strength text: `given` when not empty, else sampled once into
-- ctx.root_dir/inputs/sia/s<strength>/ per cfg.sdas (see M.SDAS). Returns dir, and a note when a random U-Net
-- stood in.
function M.sia_dir(ctx, text, given)
  if given and given ~= "" then
    if core.file_type(given) ~= "directory" then error(("SIA folder %s is not a directory"):format(given), 0) end
    return abspath(given)
  end
  local sd, cfg = ctx.cfg.sdas, ctx.cfg
  local s = M.strength(text)
  local dir = ("%s/inputs/sia/s%s"):format(ctx.root_dir, M.slug(text))
  if sd.run then
    local class = sd.class ~= "" and sd.class or cfg.data.category
    if count_images(dir .. "/" .. class) < sd.images then
      print(("sampling %d SIA images of %s (s = %s) from the SDAS run %s"):format(sd.images, class, text, sd.run))
      local ok, err = pcall(function()
        require("realnet.sdas").sample.run{rundir = sd.run, n = sd.images, strength = s, out = dir, class = class,
          steps = sd.steps, batch = sd.batch, seed = cfg.seed, grid = false, quiet = true}
      end)
      if not ok then error("sdas.run: " .. clean(err), 0) end
    end
    return abspath(dir)
  end
  if sd.trained_only then
    error(("scale '%s' needs SIA images of a trained SDAS model: --sdas.run DIR (a run of realnet sdas train), or "
      .. "folders of sampled images"):format(tostring(ctx.scale)), 0)
  end
  M.sia_images(dir, {n = sd.images, size = cfg.train.model.image_size, strength = s, seed = cfg.seed,
                     steps = sd.steps, batch = sd.batch, unet = sd.unet})
  return abspath(dir), "SIA images come from a randomly initialised SDAS U-Net (a pipeline check at this scale, "
    .. "not a measurement of SDAS)"
end

--- Channels of a backbone's stages `layers` (from a randomly initialised instance; nothing is loaded).
function M.backbone_channels(arch, layers)
  local ok, bb = pcall(core.backbone, arch, {seed = 0, layers = layers})
  if not ok then error(clean(bb), 0) end
  local st, out = bb:stages(), {}
  for i, l in ipairs(layers) do out[i] = st[l].channels end
  bb:free()
  return out
end

-- ------------------------------------------------------------------ variants

-- Sets a dotted key to a typed value: checked against the field's type by config.set, stored exactly.
local function put(t, key, v)
  if type(v) == "string" then config.set(t, key, v); return end
  config.set(t, key, type(v) == "table" and table.concat(v, ",") or tostring(v))
  local parts = {}
  for p in key:gmatch("[^%.]+") do parts[#parts + 1] = p end
  local node = t
  for i = 1, #parts - 1 do node = node[parts[i]] end
  node[parts[#parts]] = config.copy(v)
end

--- The trainer config of a variant: the recipe's train section, its data and seed, then `set` (dotted key ->
-- typed value or text).
function M.variant_config(ctx, set)
  local cfg = ctx.cfg
  local t = config.copy(cfg.train)
  t.data.root, t.data.dataset, t.data.category = ctx.data_root, cfg.data.dataset, cfg.data.category
  t.trainer.seed, t.model.seed, t.synth.seed = ctx.seed, ctx.seed, ctx.seed
  local keys = {}
  for k in pairs(set or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do put(t, k, set[k]) end
  for _, f in ipairs{{t.model.backbone, "weights"}, {t.synth, "sia"}, {t.synth, "dtd"}} do
    if f[1][f[2]] then f[1][f[2]] = abspath(f[1][f[2]]) end
  end
  return t
end

--- A file-system friendly name of a variant.
function M.slug(name) return (tostring(name):gsub("[^%w%.%-_+=]+", "_")) end

-- metrics.json of a finished variant trained with exactly tcfg, or nil (a stale directory is moved aside).
local function reusable(dir, tcfg)
  if core.file_type(dir) ~= "directory" then return nil end
  local saved = config.load(dir .. "/config.lua")
  local m = rundir.read_json(dir .. "/metrics.json")
  if saved and m and config.dump(saved) == config.dump(tcfg) then return m end
  local k, aside = 1, dir .. ".stale"
  while core.file_type(aside) do k = k + 1; aside = dir .. ".stale" .. k end
  os.rename(dir, aside)
  print(("note: %s held another or an unfinished run; moved to %s"):format(dir, aside))
  return nil
end

--- Trains and evaluates one variant into ctx.dir/<slug(name)>; returns its row.
function M.train_eval(ctx, name, tcfg)
  local dir = ctx.dir .. "/" .. M.slug(name)
  local ev = ctx.cfg.eval
  local t0 = core.now()
  local m = reusable(dir, tcfg)
  local seconds
  if m then
    print(("reusing %s (evaluated with the same config)"):format(dir))
    -- the time it took when it ran (unknown for variants finished before it was recorded)
    seconds = (rundir.read_json(dir .. "/variant.json") or {}).seconds
  else
    trainer.check(tcfg)
    trainer.run(tcfg, {out = dir})
    m = evaluator.run(dir, {overlays = ev.overlays, maps = ev.maps, batch = ev.batch})
    seconds = core.now() - t0
    rundir.write_atomic(dir .. "/variant.json", json.encode({seconds = seconds}) .. "\n")
  end
  return {variant = name, method = tcfg.method, image_auroc = m.image_auroc, pixel_auroc = m.pixel_auroc,
          aupro = m.aupro, f1_max = m.f1_max, seconds = seconds, dir = dir}
end

--- Runs the variants ({name, set, cols}) in order, then the PatchCore baseline (when cfg.baseline) with the
-- recipe's base training config; opts.baseline_cols fills the descriptive columns of its row. Returns rows.
function M.sweep(ctx, variants, opts)
  opts = opts or {}
  local n = #variants + (ctx.cfg.baseline and 1 or 0)
  local rows = {}
  for i, v in ipairs(variants) do
    print(("\n[%d/%d] %s%s"):format(i, n, v.name, ctx.seed_label or ""))
    local row = M.train_eval(ctx, v.name, v.config or M.variant_config(ctx, v.set))
    for k, c in pairs(v.cols or {}) do row[k] = c end
    rows[#rows + 1] = row
  end
  if ctx.cfg.baseline then
    print(("\n[%d/%d] patchcore%s"):format(n, n, ctx.seed_label or ""))
    rows[#rows + 1] = M.baseline(ctx, opts.baseline_set, opts.baseline_cols)
  end
  return rows
end

--- The PatchCore row (method = patchcore on the recipe's backbone, or with `set` applied).
function M.baseline(ctx, set, cols)
  local s = {method = "patchcore"}
  for k, v in pairs(set or {}) do s[k] = v end
  local row = M.train_eval(ctx, cols and cols.variant or "patchcore", M.variant_config(ctx, s))
  for k, c in pairs(cols or {}) do row[k] = c end
  return row
end

-- ------------------------------------------------------------------ speed and size

--- Inference speed and size of a trained run: {img_s, params_m} - images per second of the model's forward
-- pass on one batch of test images (after one warm-up pass; never asserted), and trainable parameters in
-- millions (the frozen backbone excluded).
function M.measure(dir, tcfg, opts)
  opts = opts or {}
  local ok, pred = pcall(predictor.open, dir)
  if not ok then error(clean(pred), 0) end
  local S = pred.image_size
  local ds <close> = trainer.open_split(tcfg, tcfg.data.category, "test", S)
  local x
  for b in ds:batches{batch = opts.batch or 8} do x = b.images; break end
  pred:predict_batch(x) -- warm-up: allocator and oneDNN primitives
  local reps, t0 = opts.reps or 3, core.now()
  for _ = 1, reps do pred:predict_batch(x) end
  local dt = core.now() - t0
  local params = 0
  if pred.method == "realnet" then
    for _, p in ipairs(pred.model:parameters()) do params = params + p:numel() end
  end
  return {img_s = x:size(1) * reps / dt, params_m = params / 1e6}
end

return M
