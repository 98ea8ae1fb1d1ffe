--- realnet.sdas.sample: `realnet sdas sample` - SIA folders (spec 11.5) from a trained SDAS run.
--
--   local sample = require "realnet.sdas.sample"
--   local run = sample.load_run("runs/sdas_mt")       -- {net, cfg, classes, image_size, weights, step}
--   sample.run{rundir = "runs/sdas_mt", n = 64, strength = {0.1, 0.2}, out = "sia/"}
--
-- Output: OUT/<class>/NNNNNN.png (the layout rn.synth's SIA source and `realnet train --sia OUT` read),
-- OUT/index.jsonl with one line per image {file (relative to OUT), class, seed, s, position} and OUT/grid.png,
-- the preview of the paper's Fig. 3a: one row per strength (rising, 0 first) of the same noise. Batch k of the
-- run is drawn with seed + k - 1 (k counts batches over all classes), so a line's seed and position locate the
-- image: `--seed SEED --n BATCH --batch BATCH` with the same strength settings reproduces its batch.
-- PNGs are the samples clipped to [-1, 1] and rounded to uint8 (the authors truncate and save JPEG).
local core = require "realnet.core"
local config = require "realnet.config"
local device = require "realnet.device"
local json = require "realnet.json"
local rundir = require "realnet.rundir"
local state = require "realnet.state"
local sdas = require "realnet.sdas"
local grid = require "realnet.sdas.grid"

local M = {}

--- load_run(dir, opts{weights = "ema" | "raw"}) -> {net (eval mode), cfg, classes, image_size, weights, step}.
-- Reads RUNDIR/model.h5 (the EMA weights of a finished run) or, before the end or with weights = "raw", the
-- last checkpoint. Raises a clear message when dir is not a trained sdas run.
function M.load_run(dir, opts)
  opts = opts or {}
  local train = require "realnet.sdas.train"
  local cfg, err = config.load(dir .. "/config.lua")
  if not cfg then error(("%s is not an sdas run directory (%s)"):format(dir, tostring(err)), 0) end
  if type(cfg.model) ~= "table" or type(cfg.diffusion) ~= "table" or not cfg.model.model_channels then
    error(("%s/config.lua is not an sdas training config (a RealNet run? use realnet eval)"):format(dir), 0)
  end
  local which = opts.weights or "ema"
  if which ~= "ema" and which ~= "raw" then error("weights must be 'ema' or 'raw', not '" .. tostring(which) .. "'", 0) end
  local path, prefix = dir .. "/model.h5", ""
  if which == "raw" or not core.file_type(path) then
    local last = train.last_checkpoint(dir)
    if not last then error(("%s has no model.h5 and no checkpoint: train it first (realnet sdas train)"):format(dir), 0) end
    path, prefix = dir .. "/checkpoints/" .. last.model, which == "raw" and "model." or "ema."
  end
  local sd, lerr, attrs = state.load(path)
  if not sd then error(("cannot read %s: %s"):format(path, tostring(lerr)), 0) end
  attrs = attrs or {}
  local classes = {}
  for c in tostring(attrs.classes or cfg.data.category):gmatch("[^,]+") do classes[#classes + 1] = c end
  local net = train.build_unet(cfg, classes)
  local own = {}
  for n, t in pairs(sd) do
    if prefix == "" then own[n] = t
    elseif n:sub(1, #prefix) == prefix then own[n:sub(#prefix + 1)] = t end
  end
  local ok, e = pcall(net.load_state_dict, net, own)
  if not ok then error(("%s does not fit the run's U-Net: %s"):format(path, tostring(e):gsub("^[^\n]-:%d+: ", "")), 0) end
  net:eval()
  return {net = net, cfg = cfg, classes = classes, image_size = cfg.model.image_size, weights = path,
          step = math.tointeger(attrs.step), kind = prefix == "model." and "raw" or "ema"}
end

--- A strength setting: a number or {a, b} with 0 <= a <= b; returns lo, hi. Raises naming the problem.
function M.check_strength(s)
  local lo, hi
  if type(s) == "number" then lo, hi = s, s
  elseif type(s) == "table" and (#s == 1 or #s == 2) then lo, hi = s[1], s[#s]
  else error("strength must be a number s or a range {a, b}", 0) end
  if type(lo) ~= "number" or type(hi) ~= "number" or lo ~= lo or hi ~= hi then error("strength must be numbers", 0) end
  if lo < 0 or hi < 0 then
    error(("strength must be >= 0, got %g: a negative s would shrink the injected noise (s = 0 gives normal "
      .. "images)"):format(math.min(lo, hi)), 0)
  end
  if hi < lo then error(("strength range %g,%g needs a <= b"):format(lo, hi), 0) end
  return lo, hi
end

--- The rows of the preview grid for a strength setting: 0 and the setting's ends and middle, rising.
function M.grid_strengths(lo, hi)
  local list, seen = {}, {}
  for _, v in ipairs{0, lo, (lo + hi) / 2, hi} do
    local key = ("%.6g"):format(v)
    if not seen[key] then seen[key] = true; list[#list + 1] = v end
  end
  table.sort(list)
  if #list == 1 then list = {0, 0.1, 0.2} end -- s = 0 asked: still show what strength does
  return list
end

-- OUT/grid.png: one row per strength of grid_strengths(lo, hi), the same noise (seed) in every row, columns
-- cycling over the classes of todo.
local function write_grid(o, net, d, dev, todo, lo, hi, S)
  local cols = math.min(o.grid_n or 8, math.max(o.n, 1))
  local ys = nil
  if net.num_classes ~= nil then
    local list = {}
    for i = 1, cols do list[i] = todo[(i - 1) % #todo + 1].id end
    ys = core.tensor(list):long()
  end
  local rows = {}
  for r, sv in ipairs(o.grid_strengths or M.grid_strengths(lo, hi)) do
    rows[r] = core.no_grad(function()
      return device.host(sdas.sampler(net, {diffusion = d, strength = sv, method = o.method, sigma = o.sigma,
        eta = o.eta, seed = o.seed or 0, device = dev}):sample(cols, {3, S, S}, {y = device.to(ys, dev)}))
    end)
  end
  return grid.write(o.out .. "/grid.png", rows)
end

--- run(o{rundir, n (per class), strength = s | {a, b}, per_image, method, sigma, eta, steps = 20, seed = 0,
-- out, batch = 8, class (name; default every class of the run), weights = "ema", grid = true, grid_n = 8,
-- quiet, device, shard = {i, count}, grid_only}) -> {out, files, index, grid}
-- shard {i, count} (i = 0..count-1) makes only the batches k with (k - 1) % count == i, with the file names and
-- seeds they have in a whole run, and writes their index lines to OUT/index.shard<i>.jsonl (no grid): count
-- processes, one per device, together write what one run writes (merge_shards joins the index).
function M.run(o)
  local lo, hi = M.check_strength(o.strength or 0)
  if math.type(o.n) ~= "integer" or o.n < 1 then error("n must be a positive integer", 0) end
  if not o.out or o.out == "" then error("no output folder: --out DIR", 0) end
  local steps = o.steps or 20
  local batch = o.batch or 8
  local seed = o.seed or 0
  local dev = device.resolve(o.device) -- before any work: no CUDA build / no GPU fails here
  local shard, shards = 0, 1
  if o.shard then
    shard, shards = o.shard[1], o.shard[2]
    if math.type(shards) ~= "integer" or shards < 1 or math.type(shard) ~= "integer" or shard < 0 or shard >= shards then
      error(("shard must be i/N with 0 <= i < N, got %s/%s"):format(tostring(shard), tostring(shards)), 0)
    end
  end
  local run = M.load_run(o.rundir, {weights = o.weights})
  local net, S = run.net:to(dev), run.image_size
  local cond = net.num_classes ~= nil
  local todo = {}
  if o.class then
    for ci, c in ipairs(run.classes) do if c == o.class then todo[1] = {name = c, id = ci} end end
    if not todo[1] then
      error(("class '%s' is not one of the run's classes (%s)"):format(o.class, table.concat(run.classes, ", ")), 0)
    end
  else
    for ci, c in ipairs(run.classes) do todo[#todo + 1] = {name = c, id = ci} end
  end
  local d = sdas.diffusion{steps = run.cfg.diffusion.steps, schedule = run.cfg.diffusion.schedule,
                           respace = "ddim" .. steps, learn_sigma = true}
  rundir.mkdir(o.out)
  if o.grid_only then -- the grid of a run sampled in shards (sdas sample --devices)
    return {out = o.out, files = {}, grid = write_grid(o, net, d, dev, todo, lo, hi, S), weights = run.weights}
  end
  local strength = lo == hi and lo or {lo, hi}
  local function sampler(k)
    return sdas.sampler(net, {diffusion = d, strength = strength, per_image = o.per_image, method = o.method,
                              sigma = o.sigma, eta = o.eta, seed = seed + k - 1, device = dev})
  end
  local index = o.shard and ("%s/index.shard%d.jsonl"):format(o.out, shard) or o.out .. "/index.jsonl"
  local tmp = index .. ".partial" -- per shard: shards of one folder run at once
  local idx = assert(io.open(tmp, "wb"))
  local bar = not o.quiet and require("realnet.progress").new{total = o.n * #todo, label = "sample", unit = "img"}
    or nil
  local done, k, files = 0, 0, {}
  for _, cls in ipairs(todo) do
    rundir.mkdir(o.out .. "/" .. cls.name)
    local made = 0
    while made < o.n do
      local b = math.min(batch, o.n - made)
      k = k + 1
      if (k - 1) % shards ~= shard then -- another shard's batch
        made, done = made + b, done + b
        goto next_batch
      end
      local x, s = core.no_grad(function()
        local y = cond and core.full({b}, cls.id, {dtype = "int64"}) or nil
        return sampler(k):sample(b, {3, S, S}, {y = device.to(y, dev)})
      end)
      x = device.host(x) -- PNGs are written from host memory
      local u8 = grid.to_u8(x)
      for i = 1, b do
        local name = ("%s/%06d.png"):format(cls.name, made + i - 1)
        core.image.write_png(o.out .. "/" .. name, u8:narrow(1, i, 1):reshape({S, S, 3}))
        files[#files + 1] = name
        idx:write(json.encode({file = name, class = cls.name, seed = seed + k - 1, position = i, s = s[i]}), "\n")
      end
      idx:flush()
      made, done = made + b, done + b
      if bar then bar:update(done, nil, b) end
      ::next_batch::
    end
  end
  idx:close()
  local ok, err = os.rename(tmp, index)
  if not ok then error("cannot write " .. index .. ": " .. tostring(err), 0) end
  if bar then bar:finish() end
  local gpath
  if o.grid ~= false and not o.shard then gpath = write_grid(o, net, d, dev, todo, lo, hi, S) end
  return {out = o.out, files = files, index = index, grid = gpath, weights = run.weights}
end

--- merge_shards(out, count) -> lines: joins OUT/index.shard0..count-1.jsonl into OUT/index.jsonl (atomically) in
-- the order one run writes - by batch (its seed, seed + k - 1) and position in it - and removes them.
function M.merge_shards(out, count)
  local entries = {}
  for i = 0, count - 1 do
    local path = ("%s/index.shard%d.jsonl"):format(out, i)
    local f = io.open(path, "rb")
    if not f then error(("shard %d wrote no index (%s)"):format(i, path), 0) end
    for line in f:lines() do
      if line ~= "" then
        local e = json.decode(line)
        entries[#entries + 1] = {seed = e.seed, position = e.position, line = line}
      end
    end
    f:close()
  end
  table.sort(entries, function(a, b)
    if a.seed ~= b.seed then return a.seed < b.seed end
    return a.position < b.position
  end)
  local lines = {}
  for i, e in ipairs(entries) do lines[i] = e.line end
  rundir.write_atomic(out .. "/index.jsonl", table.concat(lines, "\n") .. (#lines > 0 and "\n" or ""))
  for i = 0, count - 1 do os.remove(("%s/index.shard%d.jsonl"):format(out, i)) end
  return #lines
end

return M
