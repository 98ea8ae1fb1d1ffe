--- realnet.trainer: `realnet train` - RealNet (or the PatchCore baseline) trained into a run directory.
--
--   local trainer = require "realnet.trainer"
--   local cfg = trainer.defaults{preset = "cpu"}
--   cfg.data.root, cfg.data.category, cfg.trainer.epochs = "data/demo", "demo_surface", 2
--   local res = trainer.run(cfg, {out = "runs/demo"})   -- {dir, model, threshold, epoch, ...}
--
-- The config (every field written to RUNDIR/config.lua): method ("realnet" | "patchcore"), data {root, dataset,
-- category ("all" for every category), unified (one model for all categories), holdout (fraction of the
-- normal training images kept out of training to set the image threshold), workers}, synth {source (one of
-- sia, dtd, cutpaste, nsa, or several joined by commas: a mixture, each synthetic sample drawing one
-- uniformly, as the spec's anomaly_types), sia, dtd, seed, foreground, opacity (lo,hi; default per source)},
-- model (the RealNet model config of realnet.realnet.config, preset fields written out),
-- trainer {epochs, batch, lr, normal_ratio, average, seed, checkpoint_every, keep_checkpoints, threshold_quantile},
-- patchcore {layers, coreset, ...}.
--
-- Training: Adam at a constant learning rate; each sample of a batch is normal with probability normal_ratio
-- (else synthetic); the batch order and the choices depend only on the seed and the epoch, and the synthetic
-- anomalies on the synthesiser's sample counter, so a resumed run continues exactly. With trainer.average = d > 0
-- the model saved (checkpoints and model.h5) is the running average of the weights at the ends of the epochs,
-- epoch k weighted d^(epochs - k) (realnet.weight_average); training itself continues from the weights it
-- reached, which the optimiser checkpoint keeps. Checkpoints (every
-- checkpoint_every epochs and at the end) are written atomically under RUNDIR/checkpoints/: the model of the
-- epoch (epoch_NNNN.h5, kept for `eval --select best_on_test`), the optimiser (optim_epoch_NNNN.h5, latest
-- only) and last.json, the commit point naming both. A non-finite loss stops training with a message; the
-- last checkpoint stays as it was. The image threshold is the threshold_quantile of the scores of the
-- held-out normal images (never test images), stored in model.h5 with provenance attributes.
-- The library's pieces by name (not require "realnet": init.lua loads this module, so that would be a cycle).
local core = require "realnet.core"
local rn = setmetatable({data = require "realnet.data", synth = require "realnet.synth",
  realnet = require "realnet.realnet", patchcore = require "realnet.patchcore", metrics = require "realnet.metrics",
  state = require "realnet.state", h5 = require "realnet.h5", optim = require "realnet.optim"}, {__index = core})
local cli = require "realnet.cli"
local config = require "realnet.config"
local json = require "realnet.json"
local rundir = require "realnet.rundir"
local device = require "realnet.device"
local dist = require "realnet.dist"
local weight_average = require "realnet.weight_average"

local sc = core.synth_core
local M = {}

M.STREAM_HOLDOUT = 7001  -- generator streams of the trainer (the seed is trainer.seed)
M.STREAM_CHOICE = 8000   -- + epoch: per-sample normal / synthetic choices

-- ------------------------------------------------------------------ configuration

local function abspath(p)
  if p:sub(1, 1) == "/" then return p end
  local cwd = os.getenv("PWD") or "."
  return ((cwd .. "/" .. p):gsub("/%./", "/"):gsub("/%.$", ""))
end
M.abspath = abspath

local function strip_types(t)
  if type(t) ~= "table" then return t end
  local out = {}
  for k, v in pairs(t) do if k ~= "_types" then out[k] = strip_types(v) end end
  return out
end
M.strip_types = strip_types

--- The full default config of a preset ("cpu" or "paper").
function M.defaults(opts)
  opts = opts or {}
  local preset = opts.preset or "cpu"
  local mc = rn.realnet.defaults(preset)
  local train = mc.train
  mc.train = nil
  mc.backbone._types = {weights = "path"}
  mc.score._types = {pool = "int"}
  return {
    method = opts.method or "realnet",
    data = {root = "", dataset = "mvtec", category = "", unified = false, holdout = 0.1, workers = -1,
            _types = {root = "path", dataset = "choice:mvtec|visa|mpdd|btad|folder"}},
    synth = {source = "cutpaste", seed = 100, foreground = "auto",
             _types = {source = "string", sia = "path", dtd = "path", opacity = "list:number"}},
    model = mc,
    trainer = {epochs = train.epochs, batch = train.batch, lr = train.lr, normal_ratio = train.normal_ratio,
               average = train.average or 0, seed = 100, checkpoint_every = 5, keep_checkpoints = true,
               threshold_quantile = 0.99, device = "cpu"},
    patchcore = {layers = {2, 3}, coreset = 0.1, neighbourhood = 3, sigma = 4, proj_dim = 128, batch = 8,
                 score = "patch_max", _types = {score = "choice:patch_max|map_max|reweight"}},
  }
end

-- CLI option -> config key(s) (scripts/train.lua).
M.FLAG_KEYS = {
  data = {"data.root"}, dataset = {"data.dataset"}, category = {"data.category"}, unified = {"data.unified"},
  backbone = {"model.backbone.arch"}, weights = {"model.backbone.weights"}, synth = {"synth.source"},
  sia = {"synth.sia"}, dtd = {"synth.dtd"}, image_size = {"model.image_size"}, epochs = {"trainer.epochs"},
  batch = {"trainer.batch"}, afs = {"model.afs.dims"}, rrs_mode = {"model.rrs.mode"},
  rrs_ratio = {"model.rrs.ratio"}, seed = {"trainer.seed", "model.seed", "synth.seed"}, method = {"method"},
  device = {"trainer.device"},
}

--- cfg from parsed CLI options o (fields named as FLAG_KEYS, plus preset, config) and dotted overrides.
-- Precedence: preset defaults < --config file < flags < dotted overrides. Raises on unknown keys or bad values.
function M.from_cli(o, overrides)
  local cfg = M.defaults{preset = o.preset, method = o.method}
  if o.config then
    local t, err = config.load(o.config)
    if not t then error(err, 0) end
    if t.model and t.model.preset and t.model.preset ~= cfg.model.preset and not o.preset then
      cfg = M.defaults{preset = t.model.preset, method = o.method}
    end
    config.merge(cfg, t, o.config)
  end
  -- an explicit source directory picks its source when --synth is not given
  if o.synth == nil then
    if o.sia then o.synth = "sia" elseif o.dtd then o.synth = "dtd" end
  end
  local keys = {}
  for name in pairs(M.FLAG_KEYS) do keys[#keys + 1] = name end
  table.sort(keys)
  for _, name in ipairs(keys) do
    if o[name] ~= nil and not (name == "unified" and o[name] == false) then
      for _, key in ipairs(M.FLAG_KEYS[name]) do config.set(cfg, key, o[name]) end
    end
  end
  config.apply(cfg, overrides or {})
  -- paths are written absolute, so the run directory works from any working directory
  if cfg.data.root ~= "" then cfg.data.root = abspath(cfg.data.root) end
  for _, t in ipairs{{cfg.model.backbone, "weights"}, {cfg.synth, "sia"}, {cfg.synth, "dtd"}} do
    if t[1][t[2]] then t[1][t[2]] = abspath(t[1][t[2]]) end
  end
  if cfg.data.unified and o.synth == nil and (overrides or {})["synth.source"] == nil then cfg.synth.source = "dtd" end
  return cfg
end

M.SYNTH_SOURCES = {"sia", "dtd", "cutpaste", "nsa"}

--- The anomaly sources of synth.source: one name, or several joined by commas (a mixture, each synthetic
-- sample drawing one of them uniformly). Returns the list, also keyed by name; raises on an unknown or
-- repeated name.
function M.synth_sources(text)
  local list = {}
  for name in (tostring(text) .. ","):gmatch("([^,]*),") do
    local ok = false
    for _, v in ipairs(M.SYNTH_SOURCES) do if v == name then ok = true end end
    if not ok then
      local _, near = cli.nearest(name, M.SYNTH_SOURCES)
      error(("synth.source: '%s' is not one of %s, or several of them joined by commas (dtd,nsa)%s"):format(name,
        table.concat(M.SYNTH_SOURCES, ", "), near and (" - did you mean " .. near .. "?") or ""), 0)
    end
    if list[name] then error(("synth.source: '%s' is listed twice"):format(name), 0) end
    list[#list + 1], list[name] = name, true
  end
  return list
end

--- Checks a config before any work; raises a message naming the field.
function M.check(cfg)
  local d, t = cfg.data, cfg.trainer
  if cfg.method ~= "realnet" and cfg.method ~= "patchcore" then
    error(("method must be realnet or patchcore, not '%s'"):format(tostring(cfg.method)), 0)
  end
  if d.root == "" then error("no dataset given: --data DIR (data.root) is required", 0) end
  if core.file_type(d.root) ~= "directory" then error(("data.root %s is not a directory"):format(d.root), 0) end
  if d.category == "" and d.dataset ~= "folder" then
    error("--category NAME (data.category) is required: a category of the dataset, or 'all'", 0)
  end
  if d.unified and d.category ~= "all" then error("--unified trains one model for all categories: use --category all", 0) end
  if not (d.holdout >= 0 and d.holdout < 1) then error("data.holdout must be in [0, 1)", 0) end
  if t.epochs < 1 or t.batch < 1 then error("trainer.epochs and trainer.batch must be >= 1", 0) end
  if not (t.lr > 0) then error("trainer.lr must be > 0", 0) end
  if not (t.normal_ratio >= 0 and t.normal_ratio <= 1) then error("trainer.normal_ratio must be in [0, 1]", 0) end
  if type(t.average) ~= "number" or not (t.average >= 0 and t.average < 1) then
    error("trainer.average must be in [0, 1) (the per-epoch decay of the weight average; 0 = the last epoch's "
      .. "weights)", 0)
  end
  if not (t.threshold_quantile > 0 and t.threshold_quantile <= 1) then
    error("trainer.threshold_quantile must be in (0, 1]", 0)
  end
  if t.checkpoint_every < 1 then error("trainer.checkpoint_every must be >= 1", 0) end
  if type(t.device) ~= "string" or not (t.device == "cpu" or t.device:match("^cuda$") or t.device:match("^cuda:%d+$")) then
    error(("trainer.device must be cpu, cuda or cuda:N, not '%s'"):format(tostring(t.device)), 0)
  end
  local s = cfg.synth
  if cfg.method == "realnet" then
    local ok, err = pcall(rn.realnet.config.resolve, strip_types(cfg.model))
    if not ok then error(tostring(err):gsub("^[^\n]-%.lua:%d+: ", ""), 0) end
    local parts = M.synth_sources(s.source)
    if parts.dtd and not s.dtd then error("--synth dtd needs --dtd DIR (a folder of texture images)", 0) end
    if parts.sia and not s.sia then error("--synth sia needs --sia DIR (generated anomaly images)", 0) end
    local op = s.opacity
    if op ~= nil and not (#op == 2 and 0 <= op[1] and op[1] <= op[2] and op[2] <= 1) then
      error("synth.opacity must be two numbers lo,hi with 0 <= lo <= hi <= 1 (e.g. --synth.opacity=0.2,1)", 0)
    end
    if d.unified and s.source ~= "dtd" then
      error("unified mode synthesises with DTD textures (paper App. C.5): use --synth dtd --dtd DIR", 0)
    end
  end
  return cfg
end

-- ------------------------------------------------------------------ data


--- A split of the configured dataset at the model's image size; raises a clear message when unreadable.
function M.open_split(cfg, category, split, size)
  local d = cfg.data
  local cat = d.dataset ~= "folder" and category or nil
  local ok, ds = pcall(rn.data.open, d.dataset, d.root, cat, {split = split, size = size})
  if not ok then
    error(("cannot read the %s split of %s%s: %s"):format(split, d.root, cat and (" category " .. cat) or "",
      tostring(ds):gsub("^[^\n]-:%d+: ", "")), 0)
  end
  return ds
end

--- The categories of a run: {category} or every category of the dataset for "all".
function M.categories(cfg)
  local d = cfg.data
  if d.dataset == "folder" then return {d.category ~= "" and d.category or (d.root:match("([^/]+)/*$"))} end
  if d.category ~= "all" then return {d.category} end
  local cats = rn.data.categories(d.dataset, d.root)
  if #cats == 0 then error(("no categories found under %s (layout %s)"):format(d.root, d.dataset), 0) end
  return cats
end

local function write_jsonl(path, rows)
  local lines = {}
  for i, r in ipairs(rows) do
    lines[i] = json.encode({filename = r.path, label = 0, clsname = r.category})
  end
  rundir.write_atomic(path, table.concat(lines, "\n") .. (#lines > 0 and "\n" or ""))
end

--- Splits the normal training images of the categories into training and held-out lists (seeded), writes them
-- to RUNDIR/splits/train_split.jsonl and train_holdout.jsonl and returns both lists of {path, category}.
function M.split_holdout(cfg, run, categories)
  local all = {}
  for _, cat in ipairs(categories) do
    local ds <close> = M.open_split(cfg, cat, "train", cfg.model.image_size)
    for i = 1, #ds do
      local e = ds:entry(i)
      if e.label == 0 then all[#all + 1] = {path = abspath(e.path), category = cat} end
    end
  end
  if #all == 0 then
    error(("no training images: %s has no normal images in the train split of %s"):format(cfg.data.root,
      table.concat(categories, ", ")), 0)
  end
  local n_hold = 0
  if cfg.data.holdout > 0 and #all >= 2 then
    n_hold = math.max(1, math.floor(#all * cfg.data.holdout + 0.5))
    n_hold = math.min(n_hold, #all - 1)
  end
  local perm = rn.generator(cfg.trainer.seed, M.STREAM_HOLDOUT):randperm(#all):totable()
  local held = {}
  for k = 1, n_hold do held[perm[k]] = true end
  local train, hold = {}, {}
  for i, r in ipairs(all) do
    if held[i] then hold[#hold + 1] = r else train[#train + 1] = r end
  end
  run:subdir("splits")
  write_jsonl(run:path("splits", "train_split.jsonl"), train)
  write_jsonl(run:path("splits", "train_holdout.jsonl"), hold)
  return train, hold
end

--- A dataset over a split file written by split_holdout (nil for an empty list).
function M.split_dataset(run_dir, name, size)
  local path = run_dir .. "/splits/" .. name
  local f = io.open(path, "rb")
  if not f then return nil end
  local empty = f:read("a"):match("^%s*$")
  f:close()
  if empty then return nil end
  return rn.data.jsonl(path, "/", {size = size})
end

-- ------------------------------------------------------------------ helpers

--- The q-quantile of a list of numbers, linear interpolation between order statistics (numpy's default).
function M.quantile(list, q)
  local v = {}
  for i, x in ipairs(list) do v[i] = x end
  table.sort(v)
  if #v == 0 then return nil end
  local pos = (#v - 1) * q + 1
  local lo = math.floor(pos)
  local hi = math.min(lo + 1, #v)
  return v[lo] + (v[hi] - v[lo]) * (pos - lo)
end

local function mb(bytes) return ("%.1f MB"):format(bytes / 2 ^ 20) end

--- A rough memory estimate of one training step: parameters (x4 with gradients and Adam's two moments) and the
-- activations kept for backward, measured on one image with grad and scaled to the batch, plus the frozen
-- backbone's features of the batch. Returns {params, optimiser, activations, total} in bytes.
function M.memory_estimate(model, batch)
  local P = 0
  for _, p in ipairs(model:parameters()) do P = P + p:numel() * 4 end
  local S = model.cfg.image_size
  local act, feat = 0, 0
  local prev = model.training
  model:train(false) -- no batch-norm statistics move during the estimate
  local ok = pcall(function()
    local x = rn.zeros({1, 3, S, S})
    local feats = model:extract(x)
    for _, f in ipairs(feats) do feat = feat + f:numel() * 4 end
    local blocks = model:block_features(x)
    collectgarbage()
    collectgarbage("stop") -- freed garbage would hide what the graph holds
    local before = core.allocated_bytes()
    local logits, recon = model:head(blocks, false)
    local loss = logits:sum()
    for _, r in ipairs(recon) do loss = loss + r:sum() end
    act = math.max(0, core.allocated_bytes() - before)
  end)
  collectgarbage("restart")
  model:train(prev)
  if not ok then act = 0 end
  local e = {params = P, optimiser = 3 * P, activations = act * batch, features = feat * 2 * batch}
  e.total = e.params + e.optimiser + e.activations + e.features
  return e
end

function M.format_memory(e, batch)
  return ("memory estimate (rough): parameters %s, gradients + Adam state %s, activations ~%s and backbone "
    .. "features ~%s at batch %d: ~%s in all"):format(mb(e.params), mb(e.optimiser), mb(e.activations),
    mb(e.features), batch, mb(e.total))
end

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

--- Scores of every image of ds (a predict(x) -> maps, scores function), as a list.
function M.score_dataset(predict, ds, batch)
  local out = {}
  if not ds then return out end
  for b in ds:batches{batch = batch} do
    local _, s = predict(b.images)
    for _, v in ipairs(s:totable()) do out[#out + 1] = v end
  end
  return out
end

--- Provenance attributes stored in model.h5.
function M.provenance(cfg, extra)
  local a = {engine_version = rn.version, seed = cfg.trainer.seed, dataset = cfg.data.dataset,
             data_root = abspath(cfg.data.root), category = cfg.data.category, unified = cfg.data.unified and 1 or 0,
             image_size = cfg.model.image_size, trained_at = os.date("!%Y-%m-%dT%H:%M:%SZ"),
             protocol = "threshold from held-out normal training images; last epoch unless eval --select says otherwise"}
  for k, v in pairs(extra or {}) do a[k] = v end
  return a
end

-- ------------------------------------------------------------------ checkpoints

local function ckpt_name(epoch) return ("epoch_%04d.h5"):format(epoch) end

--- The commit record of the last checkpoint (a table) or nil.
function M.last_checkpoint(dir) return rundir.read_json(dir .. "/checkpoints/last.json") end

--- Every stored per-epoch model checkpoint: a list of {epoch, path}, by epoch.
function M.list_checkpoints(dir)
  local names = core.listdir(dir .. "/checkpoints") or {}
  local out = {}
  for _, n in ipairs(names) do
    local e = n:match("^epoch_(%d+)%.h5$")
    if e then out[#out + 1] = {epoch = tonumber(e), path = dir .. "/checkpoints/" .. n} end
  end
  table.sort(out, function(a, b) return a.epoch < b.epoch end)
  return out
end

-- The model without its (frozen) backbone weights: checkpoints stay small; the backbone is in model.h5.
local function save_model_light(path, model, attrs)
  local bcfg = model.cfg.backbone
  local prev = bcfg.save
  bcfg.save = false
  local ok, err = pcall(rn.realnet.save, path, model, attrs)
  bcfg.save = prev
  if not ok then error(err, 0) end
end

-- With a weight average wa, the epoch's model file holds the average (what eval would load) and the optimiser
-- file the model's own weights ("own.<name>"), from which training continues.
local function save_checkpoint(run, model, opt, epoch, synth, cfg, wa)
  local dir = run:subdir("checkpoints")
  local mname = ckpt_name(epoch)
  local function save_model()
    save_model_light(dir .. "/" .. mname, model, M.provenance(cfg, {epoch = epoch,
      weights = wa and ("average of %d epochs, decay %g"):format(wa.n, wa.decay) or nil}))
  end
  if wa then wa:with_average(save_model) else save_model() end
  local st = {}
  if wa then for name, t in pairs(wa:own()) do st["own." .. name] = t end end
  local params = model:parameters()
  for i = 1, #params do
    for slot = 1, 2 do
      local s = opt:state(i, slot)
      if s then st[("slot%d.p%05d"):format(slot, i)] = s end
    end
  end
  local oname = ("optim_epoch_%04d.h5"):format(epoch)
  rn.h5.save(dir .. "/" .. oname, st, {attrs = {steps = opt:steps(), epoch = epoch, n_params = #params,
    average_n = wa and wa.n or 0}})
  local prev = M.last_checkpoint(run.dir)
  rundir.write_atomic(dir .. "/last.json", json.encode({epoch = epoch, model = mname, optim = oname,
    synth_count = synth and synth.count or 0, steps = opt:steps(), lr = opt:lr()}, {indent = 2}) .. "\n")
  if prev and prev.optim and prev.optim ~= oname then os.remove(dir .. "/" .. prev.optim) end
  if not cfg.trainer.keep_checkpoints and prev and prev.model and prev.model ~= mname then
    os.remove(dir .. "/" .. prev.model)
  end
end

local function restore_checkpoint(run, model, opt, synth, wa)
  local last = M.last_checkpoint(run.dir)
  if not last then error(("--resume: %s has no checkpoint (checkpoints/last.json)"):format(run.dir), 0) end
  local dir = run.dir .. "/checkpoints/"
  local sd, err, attrs = rn.state.load(dir .. last.model)
  if not sd then error("--resume: " .. tostring(err), 0) end
  local cfgtext = attrs and attrs.realnet_config
  model:load_state({config = cfgtext and rn.realnet.config.decode(cfgtext) or nil, tensors = sd})
  local st, oattrs = rn.h5.load(dir .. last.optim)
  if not st then error("--resume: " .. tostring(oattrs), 0) end
  local params = model:parameters()
  if oattrs and oattrs.n_params and math.tointeger(oattrs.n_params) ~= #params then
    error(("--resume: the optimiser checkpoint has %s parameters, the model %d"):format(tostring(oattrs.n_params), #params), 0)
  end
  local own = {}
  for name, t in pairs(st) do
    local slot, i = name:match("^slot(%d)%.p(%d+)$")
    if slot then opt:set_state(tonumber(i), tonumber(slot), t) end
    local rest = name:match("^own%.(.+)$")
    if rest then own[rest] = t end
  end
  if wa then
    local ok, e = pcall(wa.restore, wa, own, math.tointeger(oattrs and oattrs.average_n) or 0)
    if not ok then error("--resume: " .. tostring(e), 0) end
  end
  opt:steps(math.tointeger(last.steps) or 0)
  if synth then synth.count = math.tointeger(last.synth_count) or 0 end
  return math.tointeger(last.epoch)
end

-- ------------------------------------------------------------------ RealNet

-- The triplet for images with the samples at positions syn made synthetic. NSA takes each one's partner from
-- `whole` (the whole batch; default images): the next image there, where images starts at position offset + 1.
local function blend(images, synth, syn, partners, whole, offset)
  whole, offset = whole or images, offset or 0
  local B = images:size(1)
  local S = images:size(3)
  local M0 = rn.zeros({B, 1, S, images:size(4)})
  if #syn == 0 then return images, images, M0, 0 end
  local idx = rn.tensor(syn)
  local sub = rn.index_select(images, 1, idx)
  local I8 = sc.from_chw(sub, "imagenet")
  local others
  if partners then -- NSA's partners: the next image of the batch (another normal image when B > 1)
    local nxt, W = {}, whole:size(1)
    for k, b in ipairs(syn) do nxt[k] = (b + offset) % W + 1 end
    others = sc.from_chw(rn.index_select(whole, 1, rn.tensor(nxt)), "imagenet")
  end
  local A8, M8 = synth:apply(I8, others)
  local As, Ms = sc.to_chw(A8, "imagenet"), sc.to_chw(M8, "raw")
  local pos = {}
  for k, b in ipairs(syn) do pos[b] = k end
  local a_parts, m_parts = {}, {}
  for b = 1, B do
    if pos[b] then
      a_parts[b] = As:narrow(1, pos[b], 1)
      m_parts[b] = Ms:narrow(1, pos[b], 1)
    else
      a_parts[b] = images:narrow(1, b, 1)
      m_parts[b] = M0:narrow(1, b, 1)
    end
  end
  return rn.cat(a_parts, 1), images, rn.cat(m_parts, 1), #syn
end

-- A, I, M for a batch of normal images: each sample synthetic with probability 1 - normal_ratio. With
-- shard {first, last} (a rank of data-parallel training) only those samples are made, each with the choice
-- and the anomaly one process would give it. synth.partners: NSA (alone or in a mixture) needs partner images.
local function make_triplet(images, synth, gen, normal_ratio, shard)
  local partners = synth.partners == true
  local B = images:size(1)
  local syn = {}
  for b = 1, B do
    if gen:random() >= normal_ratio then syn[#syn + 1] = b end
  end
  if not shard then return blend(images, synth, syn, partners) end
  local first, last = shard[1], shard[2]
  local mine, before = {}, 0
  for _, b in ipairs(syn) do
    if b < first then before = before + 1 elseif b <= last then mine[#mine + 1] = b - first + 1 end
  end
  local count = synth.count -- anomalies are numbered by the synthesiser's counter: skip the earlier ranks'
  synth.count = count + before
  local A, I, Mk, n = blend(images:narrow(1, first, last - first + 1), synth, mine, partners, images, first - 1)
  synth.count = count + #syn
  return A, I, Mk, n
end
M.make_triplet = make_triplet -- for the specs

-- The synthesiser of cfg.synth: one source, or a mixture (synth.source "dtd,nsa").
local function make_synth(cfg, category)
  local s = cfg.synth
  local function one(source)
    local o = {source = source, seed = s.seed, opacity = s.opacity, quiet = true}
    if source == "dtd" then o.dir = s.dtd elseif source == "sia" then o.dir = s.sia end
    if cfg.data.unified or s.foreground == "none" then
      o.foreground = false
    elseif s.foreground ~= "auto" then
      o.foreground = s.foreground
    end
    if category and not cfg.data.unified then o.category = category; o.dataset = cfg.data.dataset end
    local ok, synth = pcall(rn.synth.new, o)
    if not ok then error(tostring(synth):gsub("^[^\n]-:%d+: ", ""), 0) end
    return synth
  end
  local sources = M.synth_sources(s.source)
  if #sources == 1 then return one(sources[1]) end
  local parts = {}
  for i, src in ipairs(sources) do parts[i] = one(src) end
  return rn.synth.mix(parts, {seed = s.seed})
end

-- The hook the specs use to stand in for the model's training step.
M.hooks = {}

local function train_realnet(cfg, run, opts, label)
  local S = cfg.model.image_size
  local t = cfg.trainer
  local dev = device.resolve(t.device)
  -- data-parallel (opts.dist {rank, size, dir}): rank 0 has written the splits before it joins
  local comm = opts.dist and dist.join{dir = opts.dist.dir, tag = label, rank = opts.dist.rank,
                                       size = opts.dist.size, device = dev}
  local rank0 = not comm or comm.rank == 0
  local train_ds = M.split_dataset(run.dir, "train_split.jsonl", S)
  if not train_ds or #train_ds == 0 then error("no training images left after the hold-out split", 0) end
  local hold_ds = M.split_dataset(run.dir, "train_holdout.jsonl", S)
  local mcfg = strip_types(cfg.model)
  if not mcfg.backbone.weights then
    run:warn("no --weights: the backbone is randomly initialised, not ImageNet-trained (expect weaker results)")
  end
  local ok, model = pcall(rn.realnet.new, mcfg)
  if not ok then error(tostring(model):gsub("^[^\n]-:%d+: ", ""), 0) end
  local synth = make_synth(cfg, label ~= "all" and label or nil)
  -- AFS runs on the host (its accumulators are host tensors); it selects channels without replacing parameters
  if not opts.resume and mcfg.afs.method == "afs" then
    print(("AFS: selecting channels from %d synthetic batches of %d"):format(mcfg.afs.batches, mcfg.afs.batch))
    local afs_synth = make_synth(cfg, label ~= "all" and label or nil)
    model:select_features(afs_synth, train_ds)
  end
  device.model(model, dev) -- before the optimiser, which holds the parameters it is given
  local opt = rn.optim.adam(model:parameters(), {lr = t.lr})
  local step_opt = comm and dist.sync_optimizer(opt, model:parameters(), comm) or opt
  local wa = (t.average or 0) > 0 and weight_average.new(model, t.average) or nil
  local start = 0
  if opts.resume then
    start = restore_checkpoint(run, model, opt, synth, wa)
    print(("resuming %s after epoch %d of %d"):format(run.dir, start, t.epochs))
  end
  if comm then
    dist.check_in_sync(model, comm, "the start")
    print(("data-parallel: rank %d of %d on %s (%s transport), %d of each batch of %d"):format(comm.rank,
      comm.size, dev, comm.transport, t.batch // comm.size, t.batch))
  end
  local per_rank = comm and t.batch // comm.size or t.batch
  local est = M.memory_estimate(model, per_rank)
  print(M.format_memory(est, per_rank))

  local n = #train_ds
  local drop_last = n > t.batch
  local per_epoch = drop_last and n // t.batch or 1
  local workers = cfg.data.workers >= 0 and cfg.data.workers or nil
  local bar = run:progress{total = (t.epochs - start) * per_epoch, label = "train", unit = "img",
                           terms = {"loss", "seg", "mse"}}
  local step, epoch_done = 0, start
  local train_step = M.hooks.train_step or model.train_step
  for epoch = start + 1, t.epochs do
    local gen = rn.generator(t.seed, M.STREAM_CHOICE + epoch)
    local sums, count, t0 = {loss = 0, seg = 0, mse = 0}, 0, rn.now()
    for b in train_ds:batches{batch = t.batch, shuffle = true, seed = t.seed, epoch = epoch, drop_last = drop_last,
                              workers = workers} do
      local shard = comm and {dist.shard(b.images:size(1), comm.rank, comm.size)} or nil
      local A, I, Mk = make_triplet(b.images, synth, gen, t.normal_ratio, shard)
      -- synthesis runs on the host; the step runs where the model is
      local r = train_step(model, device.to(A, dev), device.to(I, dev), device.to(Mk, dev), step_opt)
      step = step + 1
      if not finite(r.loss) or step_opt.stopped then
        bar:finish()
        if step_opt.stopped and finite(r.loss) then
          error(("training stopped: the loss of %s was not finite at epoch %d, step %d"):format(step_opt.stopped,
            epoch, step), 0)
        end
        local last = M.last_checkpoint(run.dir)
        local kept = last and ("the last good checkpoint is epoch %d (%s/checkpoints/%s)"):format(last.epoch, run.dir,
          last.model) or "no checkpoint was written yet"
        error(("training stopped: the loss became %s at epoch %d, step %d (seg %s, mse %s); the weights were not "
          .. "updated with it and %s. Try a lower learning rate (--trainer.lr) or check the images."):format(
          tostring(r.loss), epoch, step, tostring(r.seg), tostring(r.mse), kept), 0)
      end
      for k in pairs(sums) do sums[k] = sums[k] + r[k] end
      count = count + 1
      bar:update(step, {loss = r.loss, seg = r.seg, mse = r.mse}, b.images:size(1))
    end
    epoch_done = epoch
    if wa then wa:update() end
    bar:note(("epoch %d/%d  loss %.4f  seg %.4f  mse %.4f  (%.1f s)"):format(epoch, t.epochs, sums.loss / count,
      sums.seg / count, sums.mse / count, rn.now() - t0))
    if epoch % t.checkpoint_every == 0 or epoch == t.epochs then
      if comm then -- every rank: the same statistics and (checked) the same weights in what rank 0 saves
        dist.average_buffers(model, comm)
        dist.check_in_sync(model, comm, ("epoch %d"):format(epoch))
      end
      if rank0 then save_checkpoint(run, model, opt, epoch, synth, cfg, wa) end
    end
  end
  bar:finish()
  if comm then comm:close() end
  if not rank0 then return {epoch = epoch_done, rank = comm.rank} end
  if wa then wa:apply() end -- the threshold and model.h5 are those of the averaged weights

  local predict = function(x)
    local maps, scores = model:forward(device.to(x, dev))
    return device.host(maps), device.host(scores)
  end
  local scores = M.score_dataset(predict, hold_ds, t.batch)
  local thr, src = M.threshold(scores, t.threshold_quantile, function()
    return M.score_dataset(predict, train_ds, t.batch)
  end, run)
  local path = run:path("model.h5")
  rn.realnet.save(path, model, M.provenance(cfg, {epoch = epoch_done, threshold = thr,
    threshold_quantile = t.threshold_quantile, threshold_source = src, threshold_n = #scores,
    selection = "last_epoch", weights = wa and ("average of %d epochs, decay %g"):format(wa.n, wa.decay) or nil}))
  return {model = path, threshold = thr, epoch = epoch_done, holdout = #scores, train = n}
end

--- The image threshold: the quantile of the held-out scores (or, when nothing was held out, of the training
-- images' scores, with a warning). Returns threshold, source text.
function M.threshold(scores, q, fallback, run)
  if #scores > 0 then return M.quantile(scores, q), ("holdout q%g"):format(q) end
  local s = fallback()
  if run then run:warn("no held-out images (data.holdout = 0 or one image): the threshold comes from training images") end
  return M.quantile(s, q) or 0.5, ("train q%g"):format(q)
end

-- ------------------------------------------------------------------ PatchCore

--- The backbone of a config (random init with its seed when no weights file is given).
function M.backbone(mc, layers, dev)
  local o = {seed = mc.backbone.seed, layers = layers, device = dev}
  if mc.backbone.weights then o.weights = mc.backbone.weights end
  local ok, bb = pcall(rn.backbone, mc.backbone.arch, o)
  if not ok then error(tostring(bb):gsub("^[^\n]-:%d+: ", ""), 0) end
  return bb
end

local function train_patchcore(cfg, run)
  local S = cfg.model.image_size
  local p = cfg.patchcore
  local train_ds = M.split_dataset(run.dir, "train_split.jsonl", S)
  if not train_ds or #train_ds == 0 then error("no training images left after the hold-out split", 0) end
  local hold_ds = M.split_dataset(run.dir, "train_holdout.jsonl", S)
  if not cfg.model.backbone.weights then
    run:warn("no --weights: the backbone is randomly initialised, not ImageNet-trained (expect weaker results)")
  end
  local bb = M.backbone(cfg.model, nil, device.resolve(cfg.trainer.device)) -- PatchCore's bank stays on the host
  local pc = rn.patchcore.new{backbone = bb, layers = p.layers, coreset = p.coreset, seed = cfg.trainer.seed,
                              neighbourhood = p.neighbourhood, sigma = p.sigma, proj_dim = p.proj_dim, score = p.score}
  local bar = run:progress{total = #train_ds, label = "patchcore", unit = "img"}
  local done = 0
  pc:fit(train_ds, {batch = p.batch, workers = cfg.data.workers >= 0 and cfg.data.workers or nil,
                    progress = function(seen) bar:update(seen, nil, seen - done); done = seen end})
  bar:finish()
  local predict = function(x) return pc:predict(x) end
  local scores = M.score_dataset(predict, hold_ds, p.batch)
  local thr, src = M.threshold(scores, cfg.trainer.threshold_quantile, function()
    return M.score_dataset(predict, train_ds, p.batch)
  end, run)
  local path = run:path("model.h5")
  pc:save(path)
  local f = assert(rn.h5.open(path, "a"))
  local attrs = M.provenance(cfg, {threshold = thr, threshold_quantile = cfg.trainer.threshold_quantile,
    threshold_source = src, threshold_n = #scores, method = "patchcore", backbone_arch = cfg.model.backbone.arch,
    backbone_weights = cfg.model.backbone.weights and abspath(cfg.model.backbone.weights) or "",
    backbone_seed = cfg.model.backbone.seed, epoch = 1, selection = "last_epoch"})
  for k, v in pairs(attrs) do f:set_attr(k, v) end
  f:close()
  return {model = path, threshold = thr, epoch = 1, holdout = #scores, train = #train_ds}
end

-- ------------------------------------------------------------------ runs

-- One model in one run directory: the categories it covers and its label ("all" for unified runs).
local function train_one(cfg, run, categories, label, opts)
  local worker = opts.dist and opts.dist.rank > 0
  if not opts.resume and not worker then M.split_holdout(cfg, run, categories) end
  local t0 = rn.now()
  local res = cfg.method == "patchcore" and train_patchcore(cfg, run) or train_realnet(cfg, run, opts, label)
  res.dir, res.seconds, res.category = run.dir, rn.now() - t0, label
  if worker then
    print(("%s: rank %d done after epoch %d, %.1f s"):format(label, res.rank, res.epoch, res.seconds))
  else
    print(("%s: model %s, threshold %.6g (q%g of %d held-out normal images), %.1f s"):format(label, res.model,
      res.threshold, cfg.trainer.threshold_quantile, res.holdout, res.seconds))
  end
  return res
end

-- Every model of the run: one (a category, or all categories unified), or one per category in
-- sub-directories; open(dir, sub_cfg) gives the run object of a sub-directory.
local function train_models(cfg, run, opts, open)
  local cats = M.categories(cfg)
  local results = {}
  if cfg.data.unified or #cats == 1 and cfg.data.category ~= "all" then
    results[1] = train_one(cfg, run, cats, cfg.data.unified and "all" or cats[1], opts)
  else
    for _, cat in ipairs(cats) do
      local sub = config.copy(cfg)
      sub.data.category = cat
      local r <close> = open(run:path(cat), sub)
      results[#results + 1] = train_one(sub, r, {cat}, cat, opts)
    end
  end
  return results
end

-- Starts ranks 1..n-1 of a data-parallel run in the background: `realnet train --out DIR --rank R/N --device D`,
-- output and exit status in the rendezvous directory (rank<R>.log, rank<R>.rc).
local function start_ranks(run_dir, ddir, devs, resume, bin)
  for r = 1, #devs - 1 do
    local words = {bin or arg and arg[-1] or "realnet", "train", "--out", run_dir, "--rank", ("%d/%d"):format(r, #devs),
                   "--device", devs[r + 1]}
    if resume then words[#words + 1] = "--resume" end
    dist.start(words, ("%s/rank%d"):format(ddir, r), {"REALNET_DIST_PARENT=" .. core.getpid()})
  end
end

-- Waits for ranks 1..n-1 to exit; raises with the log of one that failed.
local function wait_ranks(ddir, n)
  for r = 1, n - 1 do
    local base = ("%s/rank%d"):format(ddir, r)
    local rc, log = dist.wait(base, 300)
    if not rc then error(("rank %d has not exited 300 s after training ended (%s.log)"):format(r, base), 0) end
    if rc ~= "0" then error(("rank %d exited with status %s; %s.log ends:\n%s"):format(r, rc, base, log), 0) end
  end
end

-- A rank other than 0 of a data-parallel run: the config from RUNDIR/config.lua, nothing written but
-- its share of the rendezvous files in ddir.
local function run_rank(cfg, opts, ddir)
  local ok, res = pcall(function()
    M.check(cfg)
    cfg.trainer.device = device.resolve(cfg.trainer.device)
    if cfg.method ~= "realnet" then error("only RealNet trains data-parallel", 0) end
    print(("realnet train: rank %d of %d, run directory %s"):format(opts.rank, opts.size, opts.out))
    local o = {resume = opts.resume, dist = {rank = opts.rank, size = opts.size, dir = ddir}}
    return train_models(cfg, rundir.view(opts.out), o, function(dir) return rundir.view(dir) end)
  end)
  if not ok then
    dist.fail(ddir, opts.rank, res)
    error(res, 0)
  end
  return res, opts.out
end

-- Rank 0 of an MPI job (opts.mpi) runs the usual path; the others wait until it has written the run's
-- config (RUNDIR/.dist/<job>/ready), then join as run_rank.
local function run_mpi_rank(opts)
  local m = opts.mpi
  if not opts.out then error("--mpi needs the run directory: --out RUNDIR (on a filesystem every node shares)", 0) end
  local ddir = dist.rendezvous(opts.out) .. "/" .. m.job
  dist.await(ddir, m.rank, {ddir .. "/ready"}, "rank 0 to write the run's config")
  local cfg, err = config.load(opts.out .. "/config.lua")
  if not cfg then error(("--mpi: %s is not a run directory (%s)"):format(opts.out, err), 0) end
  if opts.device then cfg.trainer.device = opts.device end
  return run_rank(cfg, {out = opts.out, rank = m.rank, size = m.size, resume = opts.resume}, ddir)
end

--- Trains per cfg into opts.out (a run directory; default runs/<timestamp>); opts.resume continues the run in
-- opts.out from its last checkpoint (cfg then comes from its config.lua when nil). Returns a result table per
-- model ({dir, model, threshold, epoch, ...}); for "all" without unified, one per category (sub-directories).
-- Data-parallel: opts.devices (a list, realnet train --devices) runs one process per device with this one as
-- rank 0 (opts.bin: the realnet binary that runs the others; default this one); opts.rank, opts.size make this
-- process another rank of such a run (what rank 0 starts); opts.mpi {rank, size, job} makes it a rank of a job
-- an MPI launcher started (dist.launcher_env).
function M.run(cfg, opts)
  opts = opts or {}
  if opts.mpi and opts.mpi.rank > 0 then return run_mpi_rank(opts) end
  if opts.resume or opts.rank then
    if not opts.out then error("--resume needs the run directory: --out RUNDIR", 0) end
    local saved, err = config.load(opts.out .. "/config.lua")
    if not saved then error(("%s: %s is not a run directory (%s)"):format(opts.rank and "--rank" or "--resume",
      opts.out, err), 0) end
    if cfg then -- only the epoch count and the device may change on resume
      saved.trainer.epochs, saved.trainer.device = cfg.trainer.epochs, cfg.trainer.device
    end
    if saved.trainer.average == nil then saved.trainer.average = 0 end -- a run from before the weight average
    cfg = saved
  end
  if opts.rank then
    if opts.device then cfg.trainer.device = opts.device end
    return run_rank(cfg, opts, dist.rendezvous(opts.out))
  end
  M.check(cfg)
  local devs = opts.devices and #opts.devices > 1 and opts.devices or nil
  local size = devs and #devs or opts.mpi and opts.mpi.size or 1
  if size > 1 then
    if cfg.method ~= "realnet" then error("data-parallel training is for RealNet; PatchCore fits on one device", 0) end
    if cfg.trainer.batch % size ~= 0 then
      error(("data-parallel: trainer.batch (%d) must be a multiple of the number of ranks (%d)"):format(
        cfg.trainer.batch, size), 0)
    end
  end
  if opts.devices then cfg.trainer.device = opts.devices[1] end
  cfg.trainer.device = device.resolve(cfg.trainer.device) -- before any work: no CUDA build / no GPU fails here
  local run <close> = rundir.create{dir = opts.out, root = "runs"}
  print(("realnet train: %s on %s %s (%s), run directory %s"):format(cfg.method, cfg.data.dataset,
    cfg.data.category ~= "" and cfg.data.category or cfg.data.root, cfg.data.unified and "unified" or "per category",
    run.dir))
  run:save_config(cfg)
  local function open(dir, sub)
    local r = rundir.create{dir = dir}
    r:save_config(sub)
    return r
  end
  if size == 1 then return train_models(cfg, run, opts, open), run.dir end
  local ddir
  if devs then
    ddir = dist.rendezvous(run.dir)
    dist.reset(ddir)
    print(("data-parallel on %d devices (%s), one process each; ranks 1-%d log to %s/rank*.log"):format(#devs,
      table.concat(devs, ", "), #devs - 1, ddir))
    start_ranks(run.dir, ddir, devs, opts.resume, opts.bin)
  else
    ddir = dist.rendezvous(run.dir) .. "/" .. opts.mpi.job -- fresh per job: no stale files to clear
    rundir.mkdir(ddir)
    print(("data-parallel: rank 0 of %d MPI ranks (job %s), rendezvous in %s"):format(size, opts.mpi.job, ddir))
    rundir.write_atomic(ddir .. "/ready", "")
  end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.dist = {rank = 0, size = size, dir = ddir}
  local ok, res = pcall(train_models, cfg, run, o, open)
  if not ok then
    dist.fail(ddir, 0, res)
    error(res, 0)
  end
  if devs then wait_ranks(ddir, #devs) end
  return res, run.dir
end

return M
