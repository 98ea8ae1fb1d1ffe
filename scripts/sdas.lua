-- SDAS diffusion anomaly synthesis: fine-tune the diffusion model (train), write SIA images (sample).
--
--   realnet sdas train --data DIR --category NAME|all [--preset cpu|paper] [--steps N] [--init FILE] [--out RUNDIR]
--                      [--resume] [--section.key=value ...]
--   realnet sdas sample RUNDIR --n N --strength S|A,B [--per-image] [--method ancestral|ddim] [--devices 0,1]
--                      [--sigma beta|beta_tilde|learned] [--steps K] [--seed N] --out DIR
--
-- The logic is in lua/realnet/sdas/train.lua and sample.lua. Exit status: 0 done, 1 an error (unreadable data,
-- a diverging loss, a checkpoint of another configuration, ...), 2 a usage error.
local cli = require "realnet.cli"
local config = require "realnet.config"

local TRAIN = {
  name = "sdas train",
  usage = "--data DIR --category NAME|all [options] [--section.key=value ...]",
  summary = "fine-tunes the SDAS diffusion U-Net (improved DDPM, hybrid loss) on the normal training images of an\n" ..
            "MVTec-layout dataset: one category (unconditional) or all of them (class-conditional). Writes\n" ..
            "RUNDIR/model.h5 (EMA weights), checkpoints/, loss.csv + loss.png and val/step_*.png (s = 0 / 0.1 / 0.2).",
  options = {
    {"--data", type = "path", metavar = "DIR", help = "dataset root"},
    {"--dataset", type = "choice", choices = {"mvtec", "visa", "mpdd", "btad"}, help = "layout (mvtec)"},
    {"--category", help = "category name, or 'all' for one class-conditional model"},
    {"--preset", type = "choice", choices = {"cpu", "paper"},
     help = "cpu: 64x64 small U-Net, ~1 h on magnetic_tile on 2 cores; paper: spec 11 values, for a GPU (cpu)"},
    {"--image-size", type = "int", min = 8, help = "training resolution"},
    {"--steps", type = "int", min = 1, help = "optimiser steps"},
    {"--batch", type = "int", min = 1, help = "images per micro-step"},
    {"--accumulate", type = "int", min = 1, help = "micro-steps per optimiser step"},
    {"--lr", type = "number", min = 0},
    {"--seed", type = "int", min = 0, help = "initialisation, image order, timesteps and noise (100)"},
    {"--init", type = "path", metavar = "FILE",
     help = "warm start from a guided-diffusion checkpoint (.safetensors or realnet import's .h5) by name and shape"},
    {"--out", type = "path", metavar = "RUNDIR", help = "run directory (default runs/sdas-<timestamp>)"},
    {"--resume", type = "flag", help = "continue the run in --out from its last checkpoint"},
    {"--config", type = "path", metavar = "FILE.lua", help = "a Lua file returning config fields"},
    {"--print-config", type = "flag", help = "print the resolved config and exit"},
    {"--device", metavar = "cpu|cuda[:N]", help = "where the U-Net trains (cpu; trainer.device)"},
  },
  overrides = true,
  epilog = "dotted overrides set any config field, e.g. --model.model_channels=64 --trainer.ema=0.9999\n" ..
           "--trainer.val_every=500; with --resume only trainer.steps / checkpoint_every / val_every / val_n may change.\n" ..
           "exit status: 0 trained, 1 error (e.g. a diverging loss: the last good checkpoint is kept), 2 usage error",
}

-- "S" or "A,B" with 0 <= A <= B.
local function strength(text)
  local parts = {}
  for item in (text .. ","):gmatch("([^,]*),") do
    local v = tonumber(item)
    if not v or v ~= v or v == math.huge or v == -math.huge then
      return nil, ("expected S or A,B (numbers), got '%s'"):format(text)
    end
    parts[#parts + 1] = v
  end
  if #parts < 1 or #parts > 2 then return nil, ("expected S or A,B, got '%s'"):format(text) end
  for _, v in ipairs(parts) do
    if v < 0 then
      return nil, ("strength must be >= 0, got %g: a negative s would shrink the injected noise (s = 0 gives "
        .. "normal images)"):format(v)
    end
  end
  if parts[2] and parts[2] < parts[1] then return nil, ("the range %s needs A <= B"):format(text) end
  return parts
end

local SAMPLE = {
  name = "sdas sample",
  usage = "RUNDIR --n N --strength S|A,B --out DIR [options]",
  summary = "samples SIA images from a trained run (EMA weights): OUT/<class>/NNNNNN.png, OUT/index.jsonl\n" ..
            "({file, class, seed, s, position} per image) and OUT/grid.png (rows of rising s from the same noise).",
  positional = {{"rundir", metavar = "RUNDIR", required = true, missing = "no run directory (realnet sdas train --out)"}},
  options = {
    {"--n", type = "int", min = 1, default = 16, help = "images per class"},
    {"--strength", type = strength, metavar = "S|A,B", default = {0.1, 0.2},
     help = "s fixed, or s ~ U[A,B] per batch (per image with --per-image)"},
    {"--per-image", type = "flag", help = "draw s per image rather than per batch"},
    {"--method", type = "choice", choices = {"ancestral", "ddim"}, default = "ancestral",
     help = "Algorithm 1 or the DDIM form (Algorithm S1)"},
    {"--sigma", type = "choice", choices = {"beta", "beta_tilde", "learned"}, default = "beta",
     help = "DDIM perturbation variance"},
    {"--eta", type = "number", min = 0, default = 0, help = "DDIM eta"},
    {"--steps", type = "int", min = 2, default = 20, help = "respaced reverse steps (ddimK)"},
    {"--seed", type = "int", min = 0, default = 0, help = "batch k uses seed + k - 1"},
    {"--batch", type = "int", min = 1, default = 8},
    {"--class", help = "one class of a class-conditional run (default: every class)"},
    {"--weights", type = "choice", choices = {"ema", "raw"}, default = "ema"},
    {"--no-grid", type = "flag", help = "skip OUT/grid.png"},
    {"--out", type = "path", metavar = "DIR", required = true, help = "output folder"},
    {"--device", metavar = "cpu|cuda[:N]", help = "where the sampler runs (cpu); PNGs are written on the host"},
    {"--devices", metavar = "LIST", help = "split the batches over devices, one process each: 0,1 = cuda:0,cuda:1 " ..
     "(any device names work, e.g. cpu,cpu); the files are those one process would write"},
    {"--shard", metavar = "I/N", help = "write only batches k with (k-1) mod N = I and OUT/index.shardI.jsonl " ..
     "(what --devices runs in each process)"},
  },
  epilog = "use the folder as SIA source: realnet train ... --synth sia --sia DIR\n" ..
           "exit status: 0 done, 1 error, 2 usage error (e.g. a negative strength)",
}

local STRENGTH = {
  name = "sdas strength",
  usage = "RUNDIR --weights FILE [options]",
  summary = "the strength check: for each s, samples --n images from the same noise and reports the mean distance of\n" ..
            "their backbone features (global average of the chosen stages) to the nearest normal training image's;\n" ..
            "a working strength makes it grow with s. Writes OUT/strength.md and OUT/strength.csv when --out is given.",
  positional = {{"rundir", metavar = "RUNDIR", required = true, missing = "no run directory (realnet sdas train --out)"}},
  options = {
    {"--weights", type = "path", metavar = "FILE", required = true, help = "backbone weights (e.g. ResNet-50 v2)"},
    {"--arch", default = "resnet50v2", help = "backbone architecture"},
    {"--data", type = "path", metavar = "DIR", help = "dataset root (default: the run's)"},
    {"--category", help = "category (default: the run's)"},
    {"--strengths", type = "list", of = "number", min = 0, metavar = "S,S,...", default = {0, 0.1, 0.2, 0.4}, help = "strengths"},
    {"--n", type = "int", min = 1, default = 64, help = "generated images per strength"},
    {"--steps", type = "int", min = 2, default = 20, help = "respaced reverse steps"},
    {"--method", type = "choice", choices = {"ancestral", "ddim"}, default = "ancestral"},
    {"--seed", type = "int", min = 0, default = 0},
    {"--res", type = "int", min = 32, default = 128, help = "backbone input side"},
    {"--unet", type = "choice", choices = {"ema", "raw"}, default = "ema",
     help = "the U-Net's EMA weights or its raw weights (early in training the EMA still holds the initialisation)"},
    {"--out", type = "path", metavar = "DIR", help = "where strength.md / strength.csv go"},
  },
  epilog = "exit status: 0 done, 1 error, 2 usage error",
}

local function fail(name, err)
  io.stderr:write("realnet ", name, ": ", tostring(err):gsub("^[^\n]-%.lua:%d+: ", ""), "\n")
  if os.getenv("REALNET_DEBUG") then io.stderr:write(debug.traceback(), "\n") end
  os.exit(1)
end

local function cmd_train(args)
  local train = require "realnet.sdas.train"
  local o, overrides = cli.parse(args, TRAIN)
  local cfg
  if o.resume then
    if not o.out then cli.usage_error(TRAIN, "--resume needs the run directory: --out RUNDIR") end
    local saved, err = config.load(o.out .. "/config.lua")
    if not saved then fail("sdas train", ("--resume: %s is not an sdas run directory (%s)"):format(o.out, err)) end
    cfg = cli.try(TRAIN, train.from_cli, o, overrides, saved)
    if o.preset then cfg.preset = o.preset end
  else
    local base = nil
    if o.config then
      base = train.defaults(o.preset)
      local t, err = config.load(o.config)
      if not t then cli.usage_error(TRAIN, err) end
      cli.try(TRAIN, config.merge, base, t, o.config)
    end
    cfg = cli.try(TRAIN, train.from_cli, o, overrides, base)
    cli.try(TRAIN, train.check, cfg)
  end
  if o.print_config then io.stdout:write(config.dump(cfg)); os.exit(0) end
  local ok, err = pcall(train.run, cfg, {out = o.out, resume = o.resume})
  if not ok then fail("sdas train", err) end
end

-- --devices: one `realnet sdas sample ... --device D --shard I/N --no-grid` process per device, all at once (a
-- process drives one GPU best: sampling waits on its device every step), then the shards' index lines joined in
-- one run's order and the grid drawn on the first device.
local function sample_on_devices(args, opts, list)
  local sample = require "realnet.sdas.sample"
  local rundir = require "realnet.rundir"
  local dist = require "realnet.dist"
  local devs = dist.parse_devices(list) -- every device is checked before any work
  local child, i = {}, 1
  while i <= #args do -- our arguments, less --devices
    if args[i] == "--devices" then i = i + 1 elseif not args[i]:match("^%-%-devices=") then child[#child + 1] = args[i] end
    i = i + 1
  end
  rundir.mkdir(opts.out)
  for k, dev in ipairs(devs) do
    local words = {arg[-1], "sdas", "sample"}
    for _, a in ipairs(child) do words[#words + 1] = a end
    for _, a in ipairs{"--no-grid", "--device", dev, "--shard", ("%d/%d"):format(k - 1, #devs)} do
      words[#words + 1] = a
    end
    dist.start(words, ("%s/shard%d"):format(opts.out, k - 1))
  end
  print(("sampling on %d devices (%s), one process each; logs in %s/shard*.log"):format(#devs,
    table.concat(devs, ", "), opts.out))
  local failed
  for k, dev in ipairs(devs) do -- every process ends before the first failure is reported
    local base = ("%s/shard%d"):format(opts.out, k - 1)
    local rc, log = dist.wait(base)
    if rc ~= "0" and not failed then
      failed = ("the process on %s failed (exit %s); %s.log ends:\n%s"):format(dev, rc, base, log)
    end
  end
  if failed then error(failed, 0) end
  local count = sample.merge_shards(opts.out, #devs)
  for k = 1, #devs do
    os.remove(("%s/shard%d.rc"):format(opts.out, k - 1))
    os.remove(("%s/shard%d.log"):format(opts.out, k - 1))
  end
  local gpath
  if opts.grid then
    local g = {}
    for key, v in pairs(opts) do g[key] = v end
    g.device, g.grid_only = devs[1], true
    gpath = sample.run(g).grid
  end
  return {count = count, devices = #devs, index = opts.out .. "/index.jsonl", grid = gpath}
end

local function cmd_sample(args)
  local o = cli.parse(args, SAMPLE)
  local sample = require "realnet.sdas.sample"
  local s = o.strength
  if o.method == "ddim" and s[#s] > 0.05 then
    -- spec 11: in the DDIM form s scales an extra noise term at every step; the authors suggest s in [0.01, 0.03]
    io.stderr:write(("realnet sdas sample: note: s = %g is strong for DDIM (suggested 0.01-0.03); the ancestral "
      .. "sampler takes 0.1-0.2\n"):format(s[#s]))
  end
  local opts = {rundir = o.rundir, n = o.n, strength = #s == 1 and s[1] or s,
    per_image = o.per_image, method = o.method, sigma = o.sigma, eta = o.eta, steps = o.steps, seed = o.seed,
    batch = o.batch, class = o.class, weights = o.weights, grid = not o.no_grid, out = o.out, device = o.device}
  if o.shard then
    local i, n = o.shard:match("^(%d+)/(%d+)$")
    if not i then cli.usage_error(SAMPLE, "--shard must be I/N, e.g. 0/2") end
    opts.shard = {math.tointeger(tonumber(i)), math.tointeger(tonumber(n))}
  end
  if o.devices then
    if o.device or o.shard then cli.usage_error(SAMPLE, "--devices replaces --device and --shard") end
    local ok, res = pcall(sample_on_devices, args, opts, o.devices)
    if not ok then fail("sdas sample", res) end
    print(("wrote %d images on %d devices, %s%s"):format(res.count, res.devices, res.index,
      res.grid and (" and " .. res.grid) or ""))
    return
  end
  local ok, res = pcall(sample.run, opts)
  if not ok then fail("sdas sample", res) end
  print(("wrote %d images, %s%s"):format(#res.files, res.index, res.grid and (" and " .. res.grid) or ""))
end

local function cmd_strength(args)
  local o = cli.parse(args, STRENGTH)
  local strength_check = require "realnet.sdas.strength"
  local ok, r = pcall(strength_check.measure, {rundir = o.rundir, weights = o.weights, arch = o.arch, data = o.data,
    category = o.category, strengths = o.strengths, n = o.n, steps = o.steps, method = o.method, seed = o.seed,
    res = o.res, unet = o.unet})
  if not ok then fail("sdas strength", r) end
  local md = strength_check.table(r)
  print(("%s (%s weights, step %s), class %s, %d normal images, %s stages %s at %dx%d (samples at %dx%d):"):format(r.weights,
    r.kind, tostring(r.step), r.class, r.real, r.arch, table.concat(r.layers, ","), r.res, r.res, r.image_size,
    r.image_size))
  print(md)
  if o.out then
    require("realnet.rundir").mkdir(o.out)
    local f = assert(io.open(o.out .. "/strength.md", "w")); f:write(md, "\n"); f:close()
    f = assert(io.open(o.out .. "/strength.csv", "w"))
    f:write("s,mean,median,n\n")
    for _, row in ipairs(r.rows) do f:write(("%g,%.6f,%.6f,%d\n"):format(row.s, row.mean, row.median, row.n)) end
    f:close()
  end
end

local USAGE = [[usage: realnet sdas train|sample [options]   (realnet sdas CMD --help for each)
  train   fine-tune the SDAS diffusion model on normal images (presets cpu / paper, resumable)
  sample  write an SIA folder of generated anomalies (strength s, ancestral or DDIM) with index and preview grid
  strength  the strength check: feature distance of samples to the nearest normal image, per s]]

local args = arg or {}
local sub = args[1]
local rest = table.move(args, 2, #args, 1, {})
if sub == "train" then cmd_train(rest)
elseif sub == "sample" then cmd_sample(rest)
elseif sub == "strength" then cmd_strength(rest)
elseif sub == "-h" or sub == "--help" or sub == "help" then print(USAGE)
else
  io.stderr:write(sub and ("realnet sdas: unknown command '" .. sub .. "'\n") or "realnet sdas: no command given\n",
                  USAGE, "\n")
  os.exit(2)
end
