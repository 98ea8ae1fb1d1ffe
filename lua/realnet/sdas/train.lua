--- realnet.sdas.train: `realnet sdas train` - the SDAS diffusion model fine-tuned on normal training images
-- (spec 11.3) into a run directory.
--
--   local train = require "realnet.sdas.train"
--   local cfg = train.defaults("cpu")
--   cfg.data.root, cfg.data.category, cfg.trainer.steps = "../shared/data", "magnetic_tile", 100
--   local res = train.run(cfg, {out = "runs/sdas_mt"})     -- {dir, model, step, seconds}
--   train.run(nil, {out = "runs/sdas_mt", resume = true})  -- continue from the last checkpoint
--
-- Data: the normal images of the train split of one category (unconditional model), or of every category with
-- data.category = "all" (class-conditional: class id = the category's position in the sorted list). Images are
-- resized to model.image_size (PIL bilinear) and mapped to [-1, 1]; no flips (spec 11.3).
-- Training: hybrid loss (mse + vb), Adam, gradient clipping on every micro-step, trainer.accumulate micro-steps
-- per optimiser step (the loss is not divided, as in the authors' loop), EMA of the weights after every
-- optimiser step. Micro-step m draws its timesteps and noise from generator(seed, STREAM_NOISE + m) and its
-- images from a per-epoch permutation, so a resumed run continues exactly.
-- Run directory: config.lua, log.txt, checkpoints/ (step_NNNNNNN.h5 with model.* and ema.* weights, the optimiser
-- state, last.json as the commit point; written atomically), loss.csv and loss.png (the curve), val/step_*.png
-- (samples with s = 0 / 0.1 / 0.2 from the same noise, one row per s), model.h5 (the EMA weights at the end).
-- A non-finite or exploding loss stops training with a message; the last checkpoint stays as it was.
local core = require "realnet.core"
local config = require "realnet.config"
local device = require "realnet.device"
local json = require "realnet.json"
local rundir = require "realnet.rundir"
local state = require "realnet.state"
local h5 = require "realnet.h5"
local optim = require "realnet.optim"
local data = require "realnet.data"
local sdas = require "realnet.sdas"
local presets = require "realnet.sdas.presets"
local grid = require "realnet.sdas.grid"
local warmstart = require "realnet.sdas.warmstart"

local M = {}

M.STREAM_ORDER = 9100      -- + epoch: the image order of an epoch
M.STREAM_NOISE = 1 << 32   -- + micro-step: timesteps and noise
M.VAL_STRENGTHS = {0, 0.1, 0.2}

-- Keys that may differ when a run is resumed (length, bookkeeping); every other key must match the run's.
M.RESUMABLE = {["trainer.device"] = true, ["trainer.steps"] = true, ["trainer.checkpoint_every"] = true, ["trainer.val_every"] = true,
               ["trainer.val_n"] = true, ["trainer.keep_checkpoints"] = true, ["trainer.cache_mb"] = true,
               ["trainer.init"] = true, ["data.root"] = true}

-- The hooks the specs use to stand in for parts of the step (e.g. a NaN loss).
M.hooks = {}

local function abspath(p)
  if p:sub(1, 1) == "/" then return p end
  return ((os.getenv("PWD") or ".") .. "/" .. p):gsub("/%./", "/")
end

-- ------------------------------------------------------------------ configuration

--- The full default config of a preset ("cpu" or "paper").
function M.defaults(preset)
  local p = presets.get(preset or "cpu")
  local m, d, t = p.model, p.diffusion, p.trainer
  m._types = {channel_mult = "list:int", attention_resolutions = "list:int"}
  d._types = {schedule = "choice:linear|cosine"}
  t.keep_checkpoints, t.cache_mb, t.diverge_factor, t.max_loss, t.diverge_warmup = false, 2048, 50.0, 1e4, 50
  t.device = "cpu" -- where the U-Net trains (--device); batches move there after loading
  t._types = {init = "path"}
  return {
    preset = preset or "cpu",
    data = {root = "", dataset = "mvtec", category = "",
            _types = {root = "path", dataset = "choice:mvtec|visa|mpdd|btad"}},
    model = m, diffusion = d, trainer = t,
  }
end

-- CLI option -> config key (scripts/sdas.lua).
M.FLAG_KEYS = {data = "data.root", dataset = "data.dataset", category = "data.category",
  image_size = "model.image_size", steps = "trainer.steps", batch = "trainer.batch",
  accumulate = "trainer.accumulate", lr = "trainer.lr", seed = "trainer.seed", init = "trainer.init",
  device = "trainer.device"}

--- cfg from parsed CLI options o (FLAG_KEYS fields, preset) and dotted overrides, over `base` (a saved config
-- when resuming) or the preset's defaults. Raises on unknown keys or bad values.
function M.from_cli(o, overrides, base)
  local cfg = base and config.copy(base) or M.defaults(o.preset)
  if cfg.trainer.device == nil then cfg.trainer.device = "cpu" end -- runs saved before the field existed
  local names = {}
  for k in pairs(M.FLAG_KEYS) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    if o[k] ~= nil then config.set(cfg, M.FLAG_KEYS[k], o[k]) end
  end
  config.apply(cfg, overrides or {})
  if cfg.data.root ~= "" then cfg.data.root = abspath(cfg.data.root) end
  if cfg.trainer.init then cfg.trainer.init = abspath(cfg.trainer.init) end
  return cfg
end

--- Checks a config before any work; raises a message naming the field.
function M.check(cfg)
  local d, m, t = cfg.data, cfg.model, cfg.trainer
  if d.root == "" then error("no dataset given: --data DIR (data.root) is required", 0) end
  if core.file_type(d.root) ~= "directory" then error(("data.root %s is not a directory"):format(d.root), 0) end
  if d.category == "" then error("--category NAME (data.category) is required: a category, or 'all'", 0) end
  local div = 1 << (#m.channel_mult - 1)
  if m.image_size < div or m.image_size % div ~= 0 then
    error(("model.image_size %d must be a multiple of %d (%d levels of model.channel_mult)"):format(m.image_size,
      div, #m.channel_mult), 0)
  end
  for _, k in ipairs{"steps", "batch", "accumulate", "checkpoint_every", "val_every", "val_n"} do
    if math.type(t[k]) ~= "integer" or t[k] < 1 then error(("trainer.%s must be an integer >= 1"):format(k), 0) end
  end
  if not (t.lr > 0) then error("trainer.lr must be > 0", 0) end
  if not (t.clip > 0) then error("trainer.clip must be > 0", 0) end
  if not (t.ema >= 0 and t.ema < 1) then error("trainer.ema must be in [0, 1)", 0) end
  if not (t.diverge_factor > 1) then error("trainer.diverge_factor must be > 1", 0) end
  if t.init and not core.file_type(t.init) then error(("--init %s: no such file"):format(t.init), 0) end
  return cfg
end

--- Every settable key of a config as "key" -> text (lists comma-joined).
function M.flatten(cfg)
  local out = {}
  for _, k in ipairs(config.keys(cfg)) do
    local v = config.get(cfg, k)
    if type(v) == "table" then
      local parts = {}
      for i, e in ipairs(v) do parts[i] = tostring(e) end
      v = "{" .. table.concat(parts, ",") .. "}"
    end
    out[k] = v == nil and "none" or tostring(v)
  end
  return out
end

--- The keys (outside RESUMABLE) where configs a and b differ: a list of "key: A vs B" lines.
function M.diff(a, b)
  local fa, fb = M.flatten(a), M.flatten(b)
  local keys, seen = {}, {}
  for k in pairs(fa) do keys[#keys + 1] = k; seen[k] = true end
  for k in pairs(fb) do if not seen[k] then keys[#keys + 1] = k end end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    if not M.RESUMABLE[k] and fa[k] ~= fb[k] then
      out[#out + 1] = ("%s: %s vs %s"):format(k, fa[k] or "absent", fb[k] or "absent")
    end
  end
  return out
end

-- The identity of a config: the non-resumable keys, as JSON text (stored in checkpoints).
local function identity(cfg)
  local f, keep = M.flatten(cfg), {}
  for k, v in pairs(f) do if not M.RESUMABLE[k] then keep[k] = v end end
  return json.encode(keep)
end

--- The U-Net options of a config (num_classes for class-conditional runs).
function M.unet_opts(cfg, num_classes)
  local m = cfg.model
  return {in_channels = 3, model_channels = m.model_channels, num_res_blocks = m.num_res_blocks,
          channel_mult = m.channel_mult, attention_resolutions = m.attention_resolutions,
          num_head_channels = m.num_head_channels, use_scale_shift_norm = m.use_scale_shift_norm,
          resblock_updown = m.resblock_updown, dropout = m.dropout, learn_sigma = true,
          num_classes = num_classes, seed = cfg.trainer.seed}
end

--- A U-Net of a config; net.image_size is set so samplers built on it know their image size.
function M.build_unet(cfg, classes)
  local net = sdas.unet(M.unet_opts(cfg, classes and #classes > 1 and #classes or nil))
  net.image_size = cfg.model.image_size
  net.classes = classes
  return net
end

-- ------------------------------------------------------------------ data

--- The categories of a config: {category}, or every category under data.root for "all".
function M.classes(cfg)
  local d = cfg.data
  if d.category ~= "all" then return {d.category} end
  local cats = data.categories(d.dataset, d.root)
  if #cats == 0 then error(("no categories found under %s (layout %s)"):format(d.root, d.dataset), 0) end
  table.sort(cats)
  return cats
end

local Images = {}
Images.__index = Images

--- The normal training images of the classes: a list with :batch(indices) -> x0 [B,3,S,S] in [-1,1], y [B].
-- Decoded images are cached in memory up to cache_mb.
function M.images(cfg, classes)
  local S = cfg.model.image_size
  local self = setmetatable({items = {}, sets = {}, cache = {}, S = S}, Images)
  for ci, cat in ipairs(classes) do
    local ok, ds = pcall(data.open, cfg.data.dataset, cfg.data.root, cat, {split = "train", size = S, normalize = false})
    if not ok then
      error(("cannot read the train split of %s category %s: %s"):format(cfg.data.root, cat,
        tostring(ds):gsub("^[^\n]-:%d+: ", "")), 0)
    end
    self.sets[ci] = ds
    for i = 1, #ds do
      if ds:entry(i).label == 0 then self.items[#self.items + 1] = {set = ci, index = i, class = ci} end
    end
  end
  if #self.items == 0 then
    error(("no training images: %s has no normal images in the train split of %s (empty training folder?)"):format(
      cfg.data.root, table.concat(classes, ", ")), 0)
  end
  self.cache_ok = #self.items * 3 * S * S * 4 <= (cfg.trainer.cache_mb or 0) * 2 ^ 20
  return self
end

function Images:__len() return #self.items end

function Images:image(i)
  local c = self.cache[i]
  if c then return c end
  local it = self.items[i]
  local x = self.sets[it.set]:get(it.index).image:reshape({1, 3, self.S, self.S}) * 2 - 1
  if self.cache_ok then self.cache[i] = x end
  return x
end

function Images:batch(indices)
  local xs, ys = {}, {}
  for k, i in ipairs(indices) do
    xs[k] = self:image(i)
    ys[k] = self.items[i].class
  end
  return core.cat(xs, 1), core.tensor(ys):long()
end

function Images:close()
  for _, ds in ipairs(self.sets) do ds:free() end
  self.sets = {}
end

-- The image indices of micro-step m (0-based): epoch permutations of the items, batches of B (drop_last when
-- there are more images than B).
local function batch_indices(seed, n, B, m, perms)
  local per_epoch = n > B and n // B or 1
  local epoch, pos = m // per_epoch, m % per_epoch
  local perm = perms[epoch]
  if not perm then
    for k in pairs(perms) do perms[k] = nil end -- keep one epoch's permutation only
    perm = core.generator(seed, M.STREAM_ORDER + epoch):randperm(n):totable()
    perms[epoch] = perm
  end
  local out = {}
  for k = 1, math.min(B, n) do out[k] = perm[pos * B + k] end
  return out, epoch
end

-- ------------------------------------------------------------------ checkpoints

--- The commit record of the last checkpoint (a table) or nil.
function M.last_checkpoint(dir) return rundir.read_json(dir .. "/checkpoints/last.json") end

local function attrs_of(cfg, classes, step, extra)
  local a = {content = "realnet.sdas", sdas_config = identity(cfg), classes = table.concat(classes, ","),
             image_size = cfg.model.image_size, step = step, engine_version = core.version or "",
             written_at = os.date("!%Y-%m-%dT%H:%M:%SZ")}
  for k, v in pairs(extra or {}) do a[k] = v end
  return a
end

local function save_checkpoint(run, cfg, classes, net, ema, opt, step)
  local dir = run:subdir("checkpoints")
  local tensors = {}
  for n, t in pairs(net:state_dict()) do tensors["model." .. n] = t end
  for n, t in pairs(ema:state_dict()) do tensors["ema." .. n] = t end
  local mname = ("step_%07d.h5"):format(step)
  state.save(dir .. "/" .. mname, tensors, {attrs = attrs_of(cfg, classes, step)})
  local st, params = {}, net:parameters()
  for i = 1, #params do
    for slot = 1, 2 do
      local s = opt:state(i, slot)
      if s then st[("slot%d.p%05d"):format(slot, i)] = s end
    end
  end
  local oname = ("optim_%07d.h5"):format(step)
  h5.save(dir .. "/" .. oname, st, {attrs = {steps = opt:steps(), step = step, n_params = #params}})
  local prev = M.last_checkpoint(run.dir)
  rundir.write_atomic(dir .. "/last.json", json.encode({step = step, model = mname, optim = oname,
    optimiser_steps = opt:steps()}, {indent = 2}) .. "\n")
  if prev and prev.optim and prev.optim ~= oname then os.remove(dir .. "/" .. prev.optim) end
  if not cfg.trainer.keep_checkpoints and prev and prev.model and prev.model ~= mname then
    os.remove(dir .. "/" .. prev.model)
  end
end

-- Restores net, EMA and optimiser from the last checkpoint; returns its step. Raises when the checkpoint was
-- written by another configuration or for other classes.
local function restore_checkpoint(run, cfg, classes, net, ema, opt)
  local last = M.last_checkpoint(run.dir)
  if not last then error(("--resume: %s has no checkpoint (checkpoints/last.json)"):format(run.dir), 0) end
  local dir = run.dir .. "/checkpoints/"
  local sd, err, attrs = state.load(dir .. last.model)
  if not sd then error("--resume: " .. tostring(err), 0) end
  attrs = attrs or {}
  if attrs.sdas_config then
    local ok, saved = pcall(json.decode, attrs.sdas_config)
    local mine = json.decode(identity(cfg))
    if ok and type(saved) == "table" then
      local diffs, keys = {}, {}
      for k in pairs(saved) do keys[#keys + 1] = k end
      for k in pairs(mine) do if saved[k] == nil then keys[#keys + 1] = k end end
      table.sort(keys)
      for _, k in ipairs(keys) do
        if saved[k] ~= mine[k] then diffs[#diffs + 1] = ("%s: %s vs %s"):format(k, tostring(saved[k]), tostring(mine[k])) end
      end
      if #diffs > 0 then
        error(("--resume: checkpoint %s was written by another configuration (checkpoint vs run):\n  %s"):format(
          dir .. last.model, table.concat(diffs, "\n  ")), 0)
      end
    end
  end
  if attrs.classes and attrs.classes ~= table.concat(classes, ",") then
    error(("--resume: the checkpoint was trained on classes %s, the data now has %s"):format(attrs.classes,
      table.concat(classes, ",")), 0)
  end
  local msd, esd = {}, {}
  for n, t in pairs(sd) do
    local rest = n:match("^model%.(.+)$")
    if rest then msd[rest] = t end
    rest = n:match("^ema%.(.+)$")
    if rest then esd[rest] = t end
  end
  local ok, e = pcall(net.load_state_dict, net, msd)
  if not ok then error("--resume: the checkpoint does not fit this U-Net: " .. tostring(e):gsub("^[^\n]-:%d+: ", ""), 0) end
  for i, n in ipairs(ema.names) do
    if not esd[n] then error("--resume: the checkpoint lacks the EMA of " .. n, 0) end
    ema.shadow[i]:copy_(esd[n])
  end
  local st, _, oattrs = h5.load(dir .. last.optim)
  local params = net:parameters()
  if oattrs and oattrs.n_params and math.tointeger(oattrs.n_params) ~= #params then
    error(("--resume: the optimiser checkpoint has %s parameters, the model %d"):format(tostring(oattrs.n_params),
      #params), 0)
  end
  for name, t in pairs(st) do
    local slot, i = name:match("^slot(%d)%.p(%d+)$")
    if slot then opt:set_state(tonumber(i), tonumber(slot), t) end
  end
  opt:steps(math.tointeger(last.optimiser_steps) or 0)
  return math.tointeger(last.step)
end

-- ------------------------------------------------------------------ curve and validation

M.CURVE_COLUMNS = {"step", "loss", "mse", "vb", "grad_norm"}

local function read_history(path, upto)
  local header, rows = rundir.read_csv(path)
  local out = {}
  if not header then return out end
  for _, r in ipairs(rows) do
    local row = {}
    for i, c in ipairs(header) do row[c] = tonumber(r[i]) end
    if row.step and row.step <= upto then out[#out + 1] = row end
  end
  return out
end

--- Writes loss.csv and, through realnet.plot when it is there, loss.png. Returns the PNG path or nil.
function M.write_curve(run, history)
  run:write_csv("loss.csv", M.CURVE_COLUMNS, history)
  if #history == 0 then return nil end
  local ok, plot = pcall(require, "realnet.plot")
  if not ok or type(plot) ~= "table" or type(plot.lines) ~= "function" then
    if not run.plot_warned then run:warn("realnet.plot is not available: the loss curve is written to loss.csv only") end
    run.plot_warned = true
    return nil
  end
  local xs, series = {}, {}
  for i, r in ipairs(history) do xs[i] = r.step end
  for _, name in ipairs{"loss", "mse", "vb"} do
    local ys = {}
    for i, r in ipairs(history) do ys[i] = r[name] end
    series[#series + 1] = {name = name, x = xs, y = ys}
  end
  local path = run:path("loss.png")
  local pok, err = pcall(plot.lines, {path = path, title = "SDAS diffusion training loss", xlabel = "optimiser step",
    ylabel = "loss (mse + vb)", series = series})
  if not pok then
    if not run.plot_warned then run:warn("the loss curve could not be plotted (" .. tostring(err) .. "); see loss.csv") end
    run.plot_warned = true
    return nil
  end
  return path
end

--- Samples n images per strength in `strengths` from the same noise (seed) with net and writes one grid row
-- per strength to path. y: class ids cycled over the columns (nil for an unconditional net).
function M.strength_grid(net, path, o)
  local rows = {}
  local S = net.image_size
  local y = nil
  if net.num_classes then
    local ys = {}
    for i = 1, o.n do ys[i] = (i - 1) % net.num_classes + 1 end
    y = core.tensor(ys):long()
  end
  local dev = net:parameters()[1]:device() -- sample where the net is (noise is drawn alike on every device)
  y = device.to(y, dev)
  local prev = net.training
  net:eval()
  core.no_grad(function()
    for r, s in ipairs(o.strengths) do
      local smp = sdas.sampler(net, {respace = o.respace, strength = s, seed = o.seed, method = "ancestral",
                                     device = dev})
      rows[r] = device.host(smp:sample(o.n, {3, S, S}, {y = y}))
    end
  end)
  net:train(prev)
  return grid.write(path, rows)
end

-- ------------------------------------------------------------------ training

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

local function diverged(run, fmt, ...)
  local last = M.last_checkpoint(run.dir)
  local kept = last and ("the last good checkpoint is step %d (%s/checkpoints/%s)"):format(last.step, run.dir,
    last.model) or "no checkpoint was written yet"
  error(("training stopped: %s; the weights were not updated with it and %s. Try a lower learning rate (--lr) or "
    .. "check the images."):format(fmt:format(...), kept), 0)
end

local function train(cfg, run, opts)
  local t = cfg.trainer
  local classes = M.classes(cfg)
  local imgs = M.images(cfg, classes)
  local n = #imgs
  print(("%d normal training images of %s at %dx%d%s"):format(n, table.concat(classes, ", "), cfg.model.image_size,
    cfg.model.image_size, #classes > 1 and (", class-conditional over " .. #classes .. " classes") or ""))
  local net = M.build_unet(cfg, classes)
  local nparams = 0
  for _, p in ipairs(net:parameters()) do nparams = nparams + p:numel() end
  print(("U-Net: %.2f M parameters (width %d, channel_mult {%s})"):format(nparams / 1e6, cfg.model.model_channels,
    table.concat(cfg.model.channel_mult, ",")))
  if t.init and not opts.resume then
    local report = warmstart.apply(net, t.init)
    print(warmstart.describe(report))
  end
  local dev = t.device
  net:to(dev) -- before the EMA and the optimiser, which keep references to the parameters
  local ema = optim.ema(net, {decay = t.ema})
  local opt = optim.adam(net:parameters(), {lr = t.lr, betas = {0.9, 0.999}})
  local d = sdas.diffusion{steps = cfg.diffusion.steps, schedule = cfg.diffusion.schedule, learn_sigma = true}
  local start, history = 0, {}
  if opts.resume then
    start = restore_checkpoint(run, cfg, classes, net, ema, opt)
    history = read_history(run:path("loss.csv"), start)
    print(("resuming %s after step %d of %d"):format(run.dir, start, t.steps))
  end
  local eval_net = M.build_unet(cfg, classes):to(dev)
  local params = net:parameters()
  local y_used = #classes > 1
  local perms = {}
  local B, A = t.batch, t.accumulate
  local bar = run:progress{total = math.max(0, t.steps - start), label = "sdas", unit = "img",
                           terms = {"loss", "mse", "vb"}}
  local smoothed, best = nil, math.huge
  local t0 = core.now()
  for step = start + 1, t.steps do
    local sums = {loss = 0, mse = 0, vb = 0}
    local gnorm, seen = 0, 0
    for a = 0, A - 1 do
      local m = (step - 1) * A + a
      local idx = batch_indices(t.seed, n, B, m, perms)
      local x0, y = imgs:batch(idx)
      x0, y = device.to(x0, dev), device.to(y, dev)
      local loss, terms = sdas.training_loss(net, d, x0, {generator = core.generator(t.seed, M.STREAM_NOISE + m),
                                                          y = y_used and y or nil})
      if M.hooks.loss then loss = M.hooks.loss(loss, step, m) end
      local lv = loss:item()
      local mse, vb = terms.mse:mean():item(), terms.vb:mean():item()
      if not finite(lv) then
        bar:finish()
        diverged(run, "the loss became %s at step %d (mse %s, vb %s)", tostring(lv), step, tostring(mse), tostring(vb))
      end
      if lv > t.max_loss then
        bar:finish()
        diverged(run, "the loss exploded to %.4g at step %d (above trainer.max_loss = %g; mse %.4g)", lv, step,
          t.max_loss, mse)
      end
      loss:backward()
      gnorm = optim.clip_grad_norm(params, t.clip)
      if not finite(gnorm) then
        bar:finish()
        diverged(run, "the gradient norm became %s at step %d (loss %.4g, mse %.4g)", tostring(gnorm), step, lv, mse)
      end
      sums.loss, sums.mse, sums.vb = sums.loss + lv, sums.mse + mse, sums.vb + vb
      seen = seen + x0:size(1)
    end
    opt:step()
    opt:zero_grad()
    ema:update()
    local row = {step = step, loss = sums.loss / A, mse = sums.mse / A, vb = sums.vb / A, grad_norm = gnorm}
    history[#history + 1] = row
    -- an exploding loss: its running average far above the best running average so far
    smoothed = smoothed and (0.9 * smoothed + 0.1 * row.loss) or row.loss
    if step - start > t.diverge_warmup then
      if smoothed > t.diverge_factor * best then
        bar:finish()
        diverged(run, "the loss is exploding: its running average %.4g is over %g times its best %.4g (step %d)",
          smoothed, t.diverge_factor, best, step)
      end
      best = math.min(best, smoothed)
    end
    bar:update(step - start, {loss = row.loss, mse = row.mse, vb = row.vb}, seen)
    local last = step == t.steps
    if step % t.checkpoint_every == 0 or last then
      save_checkpoint(run, cfg, classes, net, ema, opt, step)
      M.write_curve(run, history)
    end
    if step % t.val_every == 0 or last then
      ema:copy_to(eval_net)
      local path = M.strength_grid(eval_net, run:subdir("val") .. ("/step_%07d.png"):format(step),
        {n = t.val_n, strengths = M.VAL_STRENGTHS, seed = t.seed, respace = cfg.diffusion.val_respace})
      bar:note(("step %d/%d  loss %.4f  mse %.4f  vb %.4f  validation grid %s"):format(step, t.steps, row.loss,
        row.mse, row.vb, path))
    end
  end
  bar:finish()
  local seconds = core.now() - t0
  ema:copy_to(eval_net)
  local path = run:path("model.h5")
  state.save(path, eval_net, {attrs = attrs_of(cfg, classes, t.steps, {weights = "ema", ema_decay = t.ema})})
  M.write_curve(run, history)
  imgs:close()
  return {model = path, step = t.steps, seconds = seconds, classes = classes, images = n,
          seconds_per_step = t.steps > start and seconds / (t.steps - start) or nil}
end

--- Trains per cfg into opts.out (a run directory; default runs/sdas-<timestamp>). With opts.resume the run in
-- opts.out continues from its last checkpoint: cfg (when given) may differ from the saved config only in the
-- RESUMABLE keys, else this raises listing the differences. Returns the result table and the run directory.
function M.run(cfg, opts)
  opts = opts or {}
  if opts.resume then
    if not opts.out then error("--resume needs the run directory: --out RUNDIR", 0) end
    local saved, err = config.load(opts.out .. "/config.lua")
    if not saved then error(("--resume: %s is not an sdas run directory (%s)"):format(opts.out, err), 0) end
    if cfg then
      local diffs = M.diff(saved, cfg)
      if #diffs > 0 then
        error(("--resume: %s was trained with another configuration (run vs given):\n  %s\nresume with the run's "
          .. "settings (only %s may change) or train into a new --out"):format(opts.out, table.concat(diffs, "\n  "),
          "trainer.steps, checkpoint_every, val_every, val_n, keep_checkpoints, cache_mb, data.root"), 0)
      end
      for k in pairs(M.RESUMABLE) do
        local ok, v = pcall(config.get, cfg, k)
        if ok then
          local sec, key = k:match("^(%w+)%.(.+)$")
          saved[sec][key] = v
        end
      end
    end
    cfg = saved
  elseif opts.out and M.last_checkpoint(opts.out) then
    error(("%s already holds an sdas training run (checkpoints/last.json): continue it with --resume or train "
      .. "into another --out"):format(opts.out), 0)
  end
  M.check(cfg)
  if cfg.trainer.device == nil then cfg.trainer.device = "cpu" end
  cfg.trainer.device = device.resolve(cfg.trainer.device) -- before any work: no CUDA build / no GPU fails here
  local run <close> = rundir.create{dir = opts.out, root = "runs", name = not opts.out and os.date("sdas-%Y%m%d-%H%M%S") or nil}
  print(("realnet sdas train: %s preset, %s %s, %d steps of batch %d x %d, run directory %s"):format(cfg.preset,
    cfg.data.dataset, cfg.data.category, cfg.trainer.steps, cfg.trainer.batch, cfg.trainer.accumulate, run.dir))
  run:save_config(cfg)
  local res = train(cfg, run, opts)
  res.dir = run.dir
  print(("done: %s (EMA weights), %d steps, %.1f s%s"):format(res.model, res.step, res.seconds,
    res.seconds_per_step and (", %.3f s per step"):format(res.seconds_per_step) or ""))
  return res, run.dir
end

return M
