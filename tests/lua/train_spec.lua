-- `realnet train`: the run directory, the hold-out split, checkpoints and an exact resume, a NaN loss, PatchCore,
-- unified mode, and bad input. Tiny configs (random ResNet-18 stages 1-3 at 32x32 on a 64x64 demo set) keep
-- every training to a few seconds.
local rn = require "realnet"
local H = require "rnhelp"
local trainer = require "realnet.trainer"
local config = require "realnet.config"

local BIN = os.getenv("REALNET_BIN") or "realnet"
local dir = H.tmpdir()
local DATA = dir .. "/demo"
rn.demo_data.make(DATA, {seed = 1, size = 64, train = 10, test_good = 2, test_defect = 1})
rn.demo_data.make(DATA, {seed = 2, size = 64, train = 6, test_good = 2, test_defect = 1, category = "demo_b",
                         texture = "fabric"})

local TINY = H.TINY_TRAIN .. " --trainer.checkpoint_every=1"

-- Runs the realnet binary; returns the exit code and stdout + stderr.
local function sh(args) return H.sh(BIN, dir, args) end
local function read(path) return (H.read(path)) end

local function exists(path) return rn.file_type(path) == "file" end

-- The tiny config as a table (for in-process runs).
local function tiny_cfg(epochs)
  local o = {data = DATA, category = "demo_surface", epochs = epochs, batch = 4, image_size = 32, backbone = "resnet18",
             afs = {8, 16, 16}}
  return trainer.from_cli(o, {["model.backbone.layers"] = "1,2,3", ["model.afs.batches"] = "1",
    ["model.afs.batch"] = "4", ["model.disc.hidden"] = "8",
    ["model.disc.mid"] = "8,8", ["model.recon.channel_mult"] = "1", ["model.recon.attention"] = "1",
    ["model.recon.norm_groups"] = "8", ["model.recon.head_channels"] = "8", ["trainer.checkpoint_every"] = "1"})
end

-- Quietly runs f (print goes nowhere) and returns its results or raises its error.
local function quiet(f, ...)
  local saved = _G.print
  _G.print = function() end
  local res = table.pack(pcall(f, ...))
  _G.print = saved
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

describe("realnet train", function()
  it("writes the run directory: config, log, model with threshold and provenance, splits, checkpoints", function()
    local rc, out = sh("train --data demo --category demo_surface --out runs/a --epochs 2 " .. TINY)
    assert.are.equal(0, rc, out)
    assert.matches("memory estimate", out)
    assert.matches("epoch 2/2", out)
    local run = dir .. "/runs/a"
    local cfg = assert(config.load(run .. "/config.lua"))
    assert.are.equal(2, cfg.trainer.epochs)
    assert.are.equal(32, cfg.model.image_size)
    assert.are.equal("A", cfg.model.recon.arch)               -- defaults written out
    assert.are.equal(0.99, cfg.trainer.threshold_quantile)
    assert.are.equal("/", cfg.data.root:sub(1, 1))             -- absolute paths
    assert.matches("epoch 2/2", read(run .. "/log.txt"))
    -- hold-out: 10% of 10 normal images, disjoint from the training list
    local held = read(run .. "/splits/train_holdout.jsonl")
    local train = read(run .. "/splits/train_split.jsonl")
    local nh, nt = select(2, held:gsub("\n", "")), select(2, train:gsub("\n", ""))
    assert.are.equal(1, nh)
    assert.are.equal(9, nt)
    local hpath = held:match('"filename":"([^"]+)"')
    assert.is_nil(train:find(hpath, 1, true))
    -- model.h5: loadable, with the threshold and provenance
    local m, attrs = rn.realnet.load(run .. "/model.h5")
    assert.is_table(m)
    assert.is_number(attrs.threshold)
    assert.are.equal(2, attrs.epoch)
    assert.are.equal(100, attrs.seed)
    assert.are.equal("demo_surface", attrs.category)
    assert.are.equal(rn.version, attrs.engine_version)
    assert.matches("holdout", attrs.threshold_source)
    -- checkpoints of both epochs; the optimiser of the last only
    assert.is_true(exists(run .. "/checkpoints/epoch_0001.h5"))
    assert.is_true(exists(run .. "/checkpoints/epoch_0002.h5"))
    assert.is_true(exists(run .. "/checkpoints/optim_epoch_0002.h5"))
    assert.is_false(exists(run .. "/checkpoints/optim_epoch_0001.h5"))
    assert.are.equal(2, trainer.last_checkpoint(run).epoch)
  end)

  it("resumes from the last checkpoint and continues exactly", function()
    local rc, out = sh("train --data demo --category demo_surface --out runs/b --epochs 1 " .. TINY)
    assert.are.equal(0, rc, out)
    rc, out = sh("train --out runs/b --resume --epochs 2")
    assert.are.equal(0, rc, out)
    assert.matches("resuming .- after epoch 1 of 2", out)
    assert.matches("average of 2 epochs, decay 0.9", select(2, rn.realnet.load(dir .. "/runs/b/model.h5")).weights)
    local a = rn.state.load(dir .. "/runs/a/model.h5")
    local b = rn.state.load(dir .. "/runs/b/model.h5")
    for name, t in pairs(a) do
      assert.is_truthy(b[name], name)
      if t:dtype() == "float32" then assert.are.equal(0, H.maxdiff(t, b[name]), name) end
    end
    -- only the epoch count may change on resume
    rc, out = sh("train --out runs/b --resume --batch 8")
    assert.are.equal(2, rc)
    assert.matches("only %-%-epochs may change", out)
  end)

  it("stops on a NaN loss with a clear message and keeps the last good checkpoint", function()
    local cfg = tiny_cfg(3)
    local out = dir .. "/runs/nan"
    local steps = 0
    trainer.hooks.train_step = function(model, A, I, Mk, opt)
      steps = steps + 1
      if steps == 4 then return {loss = 0 / 0, seg = 0 / 0, mse = 0.5, finite = false} end
      return model:train_step(A, I, Mk, opt)
    end
    local ok, err = pcall(quiet, trainer.run, cfg, {out = out})
    trainer.hooks.train_step = nil
    assert.is_false(ok)
    assert.matches("training stopped: the loss became %-?nan at epoch 2", err)
    assert.matches("last good checkpoint is epoch 1", err)
    assert.is_true(exists(out .. "/checkpoints/epoch_0001.h5"))
    assert.are.equal(1, trainer.last_checkpoint(out).epoch)
    assert.is_false(exists(out .. "/model.h5"))
    -- the kept checkpoint loads
    local ok2 = pcall(rn.state.load, out .. "/checkpoints/epoch_0001.h5")
    assert.is_true(ok2)
  end)

  it("refuses a checkpoint of another architecture on resume", function()
    local run = dir .. "/runs/b"
    local cfg = assert(config.load(run .. "/config.lua"))
    cfg.model.recon.arch = "B"
    config.save(cfg, dir .. "/runs/b/config.lua")
    local rc, out = sh("train --out runs/b --resume --epochs 3")
    assert.are.equal(1, rc)
    assert.matches("another architecture", out)
    assert.matches("recon.arch", out)
  end)

  it("trains the PatchCore baseline into the same run-directory shape", function()
    local rc, out = sh("train --method patchcore --data demo --category demo_surface --out runs/pc --image-size 32 "
      .. "--backbone resnet18")
    assert.are.equal(0, rc, out)
    local run = dir .. "/runs/pc"
    assert.is_true(exists(run .. "/config.lua"))
    assert.is_true(exists(run .. "/log.txt"))
    assert.is_true(exists(run .. "/splits/train_holdout.jsonl"))
    local p = rn.predictor.open(run)
    assert.are.equal("patchcore", p.method)
    assert.is_number(p.threshold)
    assert.are.equal(32, p.image_size)
  end)

  it("trains one model for all categories in unified mode (DTD synthesis, no foreground)", function()
    local dtd = dir .. "/dtd/stripes"
    os.execute("mkdir -p " .. dtd)
    os.execute(("cp %s/demo_b/train/good/00[0-2].png %s/"):format(DATA, dtd)) -- any texture images will do
    local rc, out = sh("train --data demo --category all --unified --dtd dtd --out runs/u --epochs 1 " .. TINY)
    assert.are.equal(0, rc, out)
    local cfg = assert(config.load(dir .. "/runs/u/config.lua"))
    assert.are.equal("dtd", cfg.synth.source)
    assert.is_true(cfg.data.unified)
    local held = read(dir .. "/runs/u/splits/train_holdout.jsonl") .. read(dir .. "/runs/u/splits/train_split.jsonl")
    assert.matches('"clsname":"demo_b"', held)
    assert.matches('"clsname":"demo_surface"', held)
    local _, attrs = rn.realnet.load(dir .. "/runs/u/model.h5")
    assert.are.equal("all", attrs.category)
    assert.are.equal(1, attrs.unified)
    -- unified needs DTD
    rc, out = sh("train --data demo --category all --unified --synth cutpaste --out runs/u2")
    assert.are.equal(2, rc)
    assert.matches("unified mode synthesises with DTD", out)
  end)

  it("rejects bad input with clear messages", function()
    -- no training images
    os.execute(("mkdir -p %s/empty/cat/train/good %s/empty/cat/test/good"):format(dir, dir))
    os.execute(("cp %s/demo_surface/test/good/000.png %s/empty/cat/test/good/"):format(DATA, dir))
    local rc, out = sh("train --data empty --category cat --out runs/e --epochs 1")
    assert.are.equal(1, rc)
    assert.matches("no images", out)
    assert.matches("train", out)
    -- {arguments, exit status, patterns the output must match}
    local cases = {
      {"--data demo --category demo_surface --trainer.epoch=3", 2, {"unknown key 'trainer.epoch'", "trainer.epochs"}},
      {"--data demo --category demo_surface --synth dtd", 2, {"needs %-%-dtd DIR"}},
      {"--data demo --category demo_surface --synth cutpaste,nsb", 2, {"'nsb' is not one of", "did you mean nsa"}},
      {"--data demo --category demo_surface --synth cutpaste,cutpaste", 2, {"listed twice"}},
      {"--data demo --category demo_surface --synth.opacity=0.9,0.1", 2, {"synth.opacity must be"}},
      {"--data demo --category demo_surface --trainer.average=1", 2, {"trainer.average must be in %[0, 1%)"}},
      {"--data demo --category nope --out runs/n", 1, {"nope"}},
      {"--category demo_surface", 2, {"%-%-data DIR"}},
      {"--data demo --category demo_surface --trainer.epochs=abc", 2, {"expected an integer"}},
    }
    for _, c in ipairs(cases) do
      rc, out = sh("train " .. c[1])
      assert.are.equal(c[2], rc, c[1] .. "\n" .. out)
      for _, pat in ipairs(c[3]) do assert.matches(pat, out) end
    end
  end)

  it("resolves preset < --config file < flags < dotted overrides, and validates the file's keys", function()
    local f = io.open(dir .. "/c.lua", "w")
    f:write('return {trainer = {epochs = 3, batch = 2}, model = {recon = {arch = "B"}}}\n')
    f:close()
    local rc, out = sh("train --data demo --category demo_surface --preset paper --config c.lua --epochs 5 "
      .. "--trainer.lr=2e-4 --print-config")
    assert.are.equal(0, rc, out)
    local cfg = assert(load((out:gsub("rc=%d+%s*$", "")), "=cfg", "t", {math = math}))()
    assert.are.equal(5, cfg.trainer.epochs)      -- flag over file
    assert.are.equal(2, cfg.trainer.batch)       -- file over preset
    assert.are.equal(2e-4, cfg.trainer.lr)       -- override
    assert.are.equal("B", cfg.model.recon.arch)
    assert.are.equal(256, cfg.model.image_size) -- the paper preset
    f = io.open(dir .. "/c2.lua", "w")
    f:write("return {trainer = {epoks = 3}}\n")
    f:close()
    rc, out = sh("train --data demo --category demo_surface --config c2.lua --print-config")
    assert.are.equal(2, rc)
    assert.matches("unknown key 'trainer.epoks' in c2.lua", out)
  end)

  it("splits the hold-out by seed and computes quantiles as numpy does", function()
    assert.are.equal(2.5, trainer.quantile({1, 2, 3, 4}, 0.5))
    assert.are.equal(4, trainer.quantile({4, 1, 3, 2}, 1))
    assert.is_true(math.abs(trainer.quantile({0, 10}, 0.99) - 9.9) < 1e-12)
    local cfg = tiny_cfg(1)
    local run1 = rn.rundir.create{dir = dir .. "/split1", tee = false}
    local run2 = rn.rundir.create{dir = dir .. "/split2", tee = false}
    local _, h1 = trainer.split_holdout(cfg, run1, {"demo_surface"})
    local _, h2 = trainer.split_holdout(cfg, run2, {"demo_surface"})
    assert.are.same(h1, h2)
    run1:close(); run2:close()
  end)
end)
