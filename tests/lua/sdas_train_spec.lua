-- realnet.sdas.train in-process: a NaN or exploding loss stops training with a message and keeps the last good
-- checkpoint, the loss curve falls back to CSV without realnet.plot, presets, and a sampler used directly as the
-- SIA source of rn.synth.
local rn = require "realnet"
local H = require "rnhelp"
local train = require "realnet.sdas.train"

local dir = H.tmpdir()
local data = dir .. "/data"
os.execute("mkdir -p " .. H.q(data .. "/aa/train/good"))
for i = 1, 6 do
  rn.image.write_png(("%s/aa/train/good/%03d.png"):format(data, i), (rn.rand({20, 20, 3}, {seed = i}) * 255):byte())
end

local function tiny(steps)
  local cfg = train.defaults("cpu")
  cfg.data.root, cfg.data.category = data, "aa"
  cfg.model.image_size, cfg.model.model_channels, cfg.model.channel_mult = 16, 8, {1, 2}
  cfg.model.attention_resolutions, cfg.model.num_head_channels = {2}, 8
  local t = cfg.trainer
  t.steps, t.batch, t.checkpoint_every, t.val_every, t.val_n = steps, 4, 2, 1000, 2
  cfg.diffusion.val_respace = "ddim4"
  return cfg
end

local function quietly(f, ...)
  local saved = print
  print = function() end -- the run's messages (the run directory's log keeps them)
  local res = table.pack(pcall(f, ...))
  print = saved
  return table.unpack(res, 1, res.n)
end

teardown(function()
  train.hooks.loss = nil
  os.execute("rm -rf " .. H.q(dir))
end)

describe("sdas training stops on a diverging loss", function()
  it("on a NaN loss, keeping the last good checkpoint", function()
    local out = dir .. "/nan"
    train.hooks.loss = function(loss, step) return step == 4 and loss * rn.tensor(0 / 0) or loss end
    local ok, err = quietly(train.run, tiny(6), {out = out})
    train.hooks.loss = nil
    assert.is_false(ok)
    assert.matches("the loss became %-?nan at step 4", err)
    assert.matches("last good checkpoint is step 2", err)
    local last = rn.json.decode(H.slurp(out .. "/checkpoints/last.json"))
    assert.are.equal(2, last.step)
    assert.are.equal("file", rn.file_type(out .. "/checkpoints/" .. last.model))
    assert.is_nil(rn.file_type(out .. "/model.h5"))
    -- the kept checkpoint still resumes (the NaN came from the hook, which is gone)
    local res = select(2, quietly(train.run, nil, {out = out, resume = true}))
    assert.are.equal(6, res.step)
  end)

  it("on an exploding loss (above trainer.max_loss, or far above its best running average)", function()
    train.hooks.loss = function(loss, step) return step == 3 and loss * 1e6 or loss end
    local ok, err = quietly(train.run, tiny(4), {out = dir .. "/boom"})
    assert.is_false(ok)
    assert.matches("the loss exploded to .* at step 3", err)
    assert.matches("last good checkpoint is step 2", err)
    local cfg = tiny(8)
    cfg.trainer.diverge_warmup, cfg.trainer.diverge_factor = 2, 3
    train.hooks.loss = function(loss, step) return step >= 5 and loss * 100 or loss end
    ok, err = quietly(train.run, cfg, {out = dir .. "/boom2"})
    train.hooks.loss = nil
    assert.is_false(ok)
    assert.matches("the loss is exploding: its running average .* over 3 times its best", err)
  end)
end)

describe("sdas training outputs", function()
  it("writes the loss curve as CSV with a warning when realnet.plot is missing", function()
    local run <close> = rn.rundir.create{dir = dir .. "/curve", tee = false}
    local saved_loaded, saved_pre = package.loaded["realnet.plot"], package.preload["realnet.plot"]
    package.loaded["realnet.plot"] = nil
    package.preload["realnet.plot"] = function() error("no plot module here") end
    local tmp = io.tmpfile()
    local saved_err = io.stderr
    io.stderr = tmp
    local png = train.write_curve(run, {{step = 1, loss = 1, mse = 0.9, vb = 0.1, grad_norm = 1}})
    io.stderr = saved_err
    package.loaded["realnet.plot"], package.preload["realnet.plot"] = saved_loaded, saved_pre
    tmp:seek("set")
    assert.matches("realnet.plot is not available", tmp:read("a"))
    assert.is_nil(png)
    local header, rows = rn.rundir.read_csv(dir .. "/curve/loss.csv")
    assert.are.same({"step", "loss", "mse", "vb", "grad_norm"}, header)
    assert.are.same({"1", "1", "0.9", "0.1", "1"}, rows[1])
  end)

  it("has a cpu preset at 64x64 and the paper's values", function()
    local p = train.defaults("paper")
    assert.are.same({1, 1, 2, 2, 4, 4}, p.model.channel_mult)
    assert.are.equal(256, p.model.model_channels)
    assert.are.same({32, 16, 8}, p.model.attention_resolutions)
    assert.are.equal(3, p.trainer.accumulate)
    assert.are.equal(0.9999, p.trainer.ema)
    assert.are.equal(64, train.defaults("cpu").model.image_size)
    assert.matches("unknown preset 'huge'", H.err(train.defaults, "huge"))
    local cfg = tiny(1)
    cfg.model.image_size = 17
    assert.matches("model.image_size 17 must be a multiple of 2", H.err(train.check, cfg))
  end)
end)

describe("a sampler as the SIA source of rn.synth", function()
  it("yields A, I, M triplets from generated images and redraws its pool", function()
    local net = rn.sdas.unet{model_channels = 8, num_res_blocks = 1, channel_mult = {1, 2},
                             attention_resolutions = {}, seed = 3}
    net.image_size = 16
    net:eval()
    local sampler = rn.sdas.sampler(net, {steps = 3, strength = 0.1, seed = 1})
    local ds <close> = rn.data.mvtec(data, "aa", {split = "train", size = 16})
    local synth = rn.synth.new{source = "sia", sampler = sampler, pool = 3, refresh = 4, foreground = false, seed = 5,
                               opacity = {1, 1}}
    assert.are.equal(3, #synth.files)
    local pool_dir = synth.pool_dir
    assert.are.equal("directory", rn.file_type(pool_dir))
    local first = synth.files[1]
    local A, I, M = synth:batch(ds, 4)
    assert.are.same({4, 3, 16, 16}, A:shape())
    assert.are.same({4, 3, 16, 16}, I:shape())
    assert.are.same({4, 1, 16, 16}, M:shape())
    assert.is_true(M:sum():item() > 0)
    -- where the mask is set (opacity 1) A is a generated image, elsewhere the normal one
    assert.are.equal(0, ((A - I) * (1 - M)):abs():max():item())
    assert.is_true(((A - I) * M):abs():max():item() > 0)
    synth:batch(ds, 2) -- 4 samples drawn: a new pool
    assert.is_nil(rn.file_type(first))
    assert.are.equal(3, #synth.files)
    synth:free()
    assert.is_nil(rn.file_type(pool_dir))
    assert.matches("use source = \"sia\"", H.err(rn.synth.new, {source = "dtd", sampler = sampler}))
    local bare = rn.sdas.sampler(function(x) return rn.cat({x, x}, 2) end, {steps = 2})
    assert.matches("sample_size", H.err(rn.synth.new, {source = "sia", sampler = bare}))
  end)
end)
