-- `realnet sdas train` / `realnet sdas sample` through the binary ($REALNET_BIN) on a tiny MVTec-layout dataset
-- the test writes itself (two categories of 6 images, trained at 16x16 with a width-8 U-Net): checkpoints and
-- exact resume, refused resumes, an empty training folder, negative strengths, the SIA folder and class
-- conditioning. The warm start is in sdas_warmstart_spec.lua.
local rn = require "realnet"
local H = require "rnhelp"

local bin = assert(os.getenv("REALNET_BIN"), "REALNET_BIN must point at the built realnet binary")
local dir = H.tmpdir()
local q = H.q

local function run(args) return H.run(bin, dir, args, {env = "OMP_WAIT_POLICY=passive"}) end

-- The tiny model and schedule every run here uses.
local TINY = "--image-size 16 --batch 4 --model.model_channels=8 --model.channel_mult=1,2 " ..
  "--model.attention_resolutions=2 --model.num_head_channels=8 --trainer.val_n=2 --diffusion.val_respace=ddim4 " ..
  "--trainer.val_every=1000"

local data = H.tiny_dataset(dir .. "/data", {"aa", "bb"}, 6)

local function count_lines(text)
  local n = 0
  for _ in text:gmatch("[^\n]+") do n = n + 1 end
  return n
end

local function last_step(rundir)
  return rn.json.decode(H.slurp(rundir .. "/checkpoints/last.json")).step
end

teardown(function() os.execute("rm -rf " .. q(dir)) end)

describe("realnet sdas train", function()
  it("writes checkpoints, the loss curve and validation grids, and a resumed run continues exactly", function()
    local full, part = dir .. "/full", dir .. "/part"
    local out, err, code = run("sdas train --data " .. q(data) .. " --category aa --steps 4 " .. TINY ..
      " --trainer.checkpoint_every=2 --out " .. q(full))
    assert.are.equal(0, code, err)
    assert.matches("6 normal training images of aa", out)
    assert.are.equal(4, last_step(full))
    assert.are.equal(5, count_lines(H.slurp(full .. "/loss.csv")))      -- header + 4 steps
    assert.are.equal("file", rn.file_type(full .. "/model.h5"))
    assert.are.equal("file", rn.file_type(full .. "/val/step_0000004.png"))
    local g = rn.image.read(full .. "/val/step_0000004.png")
    assert.are.same({3 * 16 + 2 * 2, 2 * 16 + 2, 3}, g:shape())           -- rows s = 0 / 0.1 / 0.2, 2 columns
    -- the same run in two parts
    _, err, code = run("sdas train --data " .. q(data) .. " --category aa --steps 2 " .. TINY .. " --out " .. q(part))
    assert.are.equal(0, code, err)
    assert.are.equal(2, last_step(part))
    out, err, code = run("sdas train --resume --out " .. q(part) .. " --steps 4")
    assert.are.equal(0, code, err)
    assert.matches("resuming .* after step 2 of 4", out)
    assert.are.equal(4, last_step(part))
    assert.are.equal(5, count_lines(H.slurp(part .. "/loss.csv")))
    local a, b = rn.load(full .. "/model.h5"), rn.load(part .. "/model.h5")
    local n = 0
    for k, t in pairs(a) do
      assert.are.equal(0, H.maxdiff(t, b[k]), k)
      n = n + 1
    end
    assert.is_true(n > 20)
    assert.are.equal(H.slurp(full .. "/loss.csv"), H.slurp(part .. "/loss.csv"))
  end)

  it("refuses to resume with another configuration, to overwrite a run, and an empty training folder", function()
    local part = dir .. "/part"
    local _, err, code = run("sdas train --resume --out " .. q(part) .. " --model.model_channels=16")
    assert.are.equal(1, code)
    assert.matches("another configuration", err)
    assert.matches("model%.model_channels: 8 vs 16", err)
    _, err, code = run("sdas train --resume --out " .. q(part) .. " --preset paper")
    assert.are.equal(1, code)
    assert.matches("preset: cpu vs paper", err)
    _, err, code = run("sdas train --data " .. q(data) .. " --category aa " .. TINY .. " --out " .. q(part))
    assert.are.equal(1, code)
    assert.matches("already holds an sdas training run", err)
    _, err, code = run("sdas train --resume --out " .. q(dir .. "/nowhere"))
    assert.are.equal(1, code)
    assert.matches("not an sdas run directory", err)
    os.execute("mkdir -p " .. q(dir .. "/empty/cat/train/good"))
    _, err, code = run("sdas train --data " .. q(dir .. "/empty") .. " --category cat " .. TINY .. " --out " ..
      q(dir .. "/e"))
    assert.are.equal(1, code)
    assert.matches("empty", err)
    _, err, code = run("sdas train --category aa --out " .. q(dir .. "/e2"))
    assert.are.equal(2, code)
    assert.matches("%-%-data", err)
    _, err, code = run("sdas frobnicate")
    assert.are.equal(2, code)
    assert.matches("unknown command 'frobnicate'", err)
    local out
    out, _, code = run("sdas train --help")
    assert.are.equal(0, code)
    assert.matches("usage: realnet sdas train", out)
  end)
end)

describe("realnet sdas sample", function()
  it("writes N PNGs per class, index.jsonl and the strength grid, and refuses negative strengths", function()
    local full, sia = dir .. "/full", dir .. "/sia"
    local out, err, code = run("sdas sample " .. q(full) .. " --n 5 --batch 2 --strength 0.1,0.3 --steps 4 --seed 7 " ..
      "--out " .. q(sia))
    assert.are.equal(0, code, err)
    assert.matches("wrote 5 images", out)
    local lines = {}
    for line in H.slurp(sia .. "/index.jsonl"):gmatch("[^\n]+") do lines[#lines + 1] = rn.json.decode(line) end
    assert.are.equal(5, #lines)
    for i, e in ipairs(lines) do
      assert.are.equal(("aa/%06d.png"):format(i - 1), e.file)
      assert.are.equal("aa", e.class)
      assert.is_true(e.s >= 0.1 and e.s <= 0.3)
      assert.are.equal(7 + (i - 1) // 2, e.seed)                    -- batch k is drawn with seed + k - 1
      assert.are.same({16, 16, 3}, rn.image.read(sia .. "/" .. e.file):shape())
    end
    assert.are.equal(lines[1].s, lines[2].s)                          -- one draw per batch
    local g = rn.image.read(sia .. "/grid.png")
    assert.are.same({4 * 16 + 3 * 2, 5 * 16 + 4 * 2, 3}, g:shape())  -- rows s = 0, 0.1, 0.2, 0.3
    -- per-image strengths, DDIM with the learned variance
    _, err, code = run("sdas sample " .. q(full) .. " --n 3 --strength 0.01,0.03 --per-image --method ddim " ..
      "--sigma learned --steps 4 --no-grid --out " .. q(dir .. "/sia_ddim"))
    assert.are.equal(0, code, err)
    assert.is_nil(rn.file_type(dir .. "/sia_ddim/grid.png"))
    assert.are.equal(3, count_lines(H.slurp(dir .. "/sia_ddim/index.jsonl")))
    -- bad strengths are usage errors
    _, err, code = run("sdas sample " .. q(full) .. " --n 2 --strength -0.1 --out " .. q(dir .. "/neg"))
    assert.are.equal(2, code)
    assert.matches("strength must be >= 0", err)
    _, err, code = run("sdas sample " .. q(full) .. " --n 2 --strength 0.1,-0.2 --out " .. q(dir .. "/neg"))
    assert.are.equal(2, code)
    assert.matches("strength must be >= 0", err)
    assert.is_nil(rn.file_type(dir .. "/neg"))
    _, err, code = run("sdas sample " .. q(dir .. "/data") .. " --n 2 --out " .. q(dir .. "/x"))
    assert.are.equal(1, code)
    assert.matches("not an sdas run directory", err)
    local sample = require "realnet.sdas.sample"
    assert.matches("strength must be >= 0", H.err(sample.run, {rundir = full, n = 1, strength = -1, out = dir .. "/y"}))
  end)

  it("splits the batches over --devices, one process each, and writes what one process writes", function()
    local full, one, two = dir .. "/full", dir .. "/dev_one", dir .. "/dev_two"
    local common = " --n 5 --batch 2 --strength 0.1,0.3 --steps 3 --seed 3 --out "
    local _, err, code = run("sdas sample " .. q(full) .. common .. q(one))
    assert.are.equal(0, code, err)
    local out
    out, err, code = run("sdas sample " .. q(full) .. common .. q(two) .. " --devices cpu,cpu")
    assert.are.equal(0, code, err)
    assert.matches("wrote 5 images on 2 devices", out)
    assert.are.equal(H.slurp(one .. "/index.jsonl"), H.slurp(two .. "/index.jsonl"))
    for i = 0, 4 do
      local f = ("/aa/%06d.png"):format(i)
      assert.are.equal(H.slurp(one .. f), H.slurp(two .. f), f)
    end
    assert.are.equal(H.slurp(one .. "/grid.png"), H.slurp(two .. "/grid.png"))
    assert.is_nil(rn.file_type(two .. "/index.shard0.jsonl")) -- shards joined and removed
    _, err, code = run("sdas sample " .. q(full) .. " --n 2 --out " .. q(dir .. "/z") .. " --devices cpu --device cpu")
    assert.are.equal(2, code)
    assert.matches("--devices replaces --device", err, 1, true)
    _, err, code = run("sdas sample " .. q(full) .. " --n 2 --out " .. q(dir .. "/z") .. " --devices cpu,tpu")
    assert.are.equal(1, code)
    assert.matches("device tpu is not usable", err, 1, true)
  end)

  it("trains one class-conditional model on every category and samples each class into its folder", function()
    local uni, sia = dir .. "/uni", dir .. "/sia_uni"
    local out, err, code = run("sdas train --data " .. q(data) .. " --category all --steps 1 " .. TINY ..
      " --accumulate 2 --out " .. q(uni))
    assert.are.equal(0, code, err)
    assert.matches("class%-conditional over 2 classes", out)
    out, err, code = run("sdas sample " .. q(uni) .. " --n 2 --strength 0.2 --steps 3 --out " .. q(sia))
    assert.are.equal(0, code, err)
    assert.are.same({"000000.png", "000001.png"}, rn.listdir(sia .. "/aa"))
    assert.are.same({"000000.png", "000001.png"}, rn.listdir(sia .. "/bb"))
    _, err, code = run("sdas sample " .. q(uni) .. " --n 1 --class cc --out " .. q(sia .. "2"))
    assert.are.equal(1, code)
    assert.matches("class 'cc' is not one of the run's classes %(aa, bb%)", err)
  end)
end)

describe("realnet sdas strength", function()
  local shared = os.getenv("REALNET_SHARED") or "../shared"
  local w = shared .. "/weights/resnet50v2_imagenet_stages1-3.safetensors"

  it("refuses to run without backbone weights, and a negative strength", function()
    local full = dir .. "/full"
    local _, err, code = run("sdas strength " .. q(full))
    assert.are.equal(2, code)
    assert.matches("%-%-weights", err)
    _, err, code = run("sdas strength " .. q(full) .. " --weights x.safetensors --strengths 0,-0.1")
    assert.are.equal(2, code)
    assert.matches("strengths", err)
  end)

  it("reports one row per strength, the same noise for each, with the real ResNet-50 v2 weights", function()
    if rn.file_type(w) ~= "file" then
      pending("../shared/weights is absent")
      return
    end
    local full, out_dir = dir .. "/full", dir .. "/strength"
    local out, err, code = run("sdas strength " .. q(full) .. " --weights " .. q(w) .. " --n 3 --steps 3 --res 32 " ..
      "--strengths 0,0,0.5 --out " .. q(out_dir))
    assert.are.equal(0, code, err)
    assert.matches("6 normal images", out)
    local rows = {}
    for line in H.slurp(out_dir .. "/strength.csv"):gmatch("[^\n]+") do rows[#rows + 1] = line end
    assert.are.equal(4, #rows)                                -- header + 3 strengths
    local function mean(i) return tonumber(rows[i + 1]:match("^[^,]+,([^,]+),")) end
    assert.are.equal(mean(1), mean(2))                         -- same seed and s: the same samples
    assert.is_true(mean(1) > 0)
    assert.are_not.equal(mean(1), mean(3))                     -- s changes the samples
  end)
end)
