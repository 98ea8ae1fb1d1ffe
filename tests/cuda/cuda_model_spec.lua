-- cuda_model_spec.lua - RealNet and SDAS on a CUDA device give the CPU's numbers: inference maps and scores,
-- training losses and updated weights, the SDAS hybrid loss and a DDIM sample from the same seed; and the
-- commands (train, eval, predict, sdas train, sdas sample) run end to end with --device cuda; the NCCL binding
-- averages in place (and train --devices 0,1 runs where there are two GPUs). CTest runs it only
-- when a GPU is usable (its command exits 77, skipped, otherwise). Float32 throughout (TF32 off), so the
-- tolerances are those of a different summation order: 1e-3 relative on maps, losses and weights.
local rn = require "realnet"
local device = require "realnet.device"
local H = require "rnhelp"

local BIN = os.getenv("REALNET_BIN") or "realnet"
-- REALNET_SPEC_DEVICE=cpu runs the same steps against the CPU (to check the spec itself without a GPU)
local DEV = os.getenv("REALNET_SPEC_DEVICE") or "cuda"
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
rn.cuda.set_tf32(false)

local function host(t) return device.host(t) end

-- max |a - b| over max(1, max |a|): one number per comparison, printed on failure
local function rel_diff(a, b)
  a, b = host(a), host(b)
  local scale = math.max(1, rn.abs(a):max():item())
  return rn.abs(a - b):max():item() / scale
end

local function close(a, b, tol, what)
  local d = rel_diff(a, b)
  assert.is_true(d <= tol, ("%s: relative difference %.3g > %.3g"):format(what, d, tol))
end

local function tiny_model()
  return rn.realnet.new{preset = "cpu", image_size = 64, seed = 5,
                        backbone = {arch = "resnet18", layers = {1, 2, 3}, seed = 1},
                        afs = {method = "rdr", dims = {16, 32, 32}, batches = 2, batch = 2},
                        disc = {hidden = 16, mid = {8, 8}}}
end

-- smooth images, square masks, A = I brightened under the mask
local function triplet(n, seed)
  local I = rn.upsample(rn.randn({n, 3, 8, 8}, {seed = seed}), {size = {64, 64}, mode = "bilinear"})
  local M = rn.zeros({n, 1, 64, 64})
  for b = 1, n do
    local y0, x0 = 8 + 9 * ((b + seed) % 4), 6 + 11 * ((b * 3 + seed) % 4)
    M:narrow(1, b, 1):narrow(3, y0 + 1, 14):narrow(4, x0 + 1, 12):fill_(1)
  end
  return I + M * 3, I, M
end

describe("RealNet on cuda", function()
  it("gives the CPU's anomaly maps and scores", function()
    local cpu, gpu = tiny_model(), device.model(tiny_model(), DEV)
    local x = triplet(3, 4)
    local m1, s1 = cpu:forward(x)
    local m2, s2 = gpu:forward(x:to(DEV))
    assert.equal(device.resolve(DEV), m2:device())
    close(m1, m2, 1e-3, "maps")
    close(s1, s2, 1e-3, "scores")
  end)

  it("follows the CPU through training steps (losses and weights)", function()
    local cpu, gpu = tiny_model(), device.model(tiny_model(), DEV)
    local o1 = rn.optim.adam(cpu:parameters(), {lr = 1e-3})
    local o2 = rn.optim.adam(gpu:parameters(), {lr = 1e-3})
    for step = 1, 3 do
      local A, I, M = triplet(4, 7 + step)
      local r1 = cpu:train_step(A, I, M, o1)
      local r2 = gpu:train_step(A:to(DEV), I:to(DEV), M:to(DEV), o2)
      assert.is_true(r2.finite)
      for _, k in ipairs{"loss", "seg", "mse"} do
        local d = math.abs(r1[k] - r2[k]) / math.max(1e-6, math.abs(r1[k]))
        assert.is_true(d < 1e-3, ("step %d %s: cpu %.6g cuda %.6g"):format(step, k, r1[k], r2[k]))
      end
    end
    local p1, p2 = cpu:parameters(), gpu:parameters()
    assert.equal(#p1, #p2)
    for i = 1, #p1 do close(p1[i], p2[i], 1e-3, "parameter " .. i) end
  end)
end)

describe("RealNet as a CUDA graph", function()
  it("replays the forward with the eager results, for new inputs too", function()
    if DEV == "cpu" then pending("CUDA graphs need a GPU") return end
    local m = device.model(tiny_model(), DEV)
    local x1, x2 = triplet(2, 4):to(DEV), triplet(2, 9):to(DEV)
    local r = m:graph(x1)
    local m1, s1 = m:forward(x1)
    local gm, gs = r:run()
    close(m1, gm, 1e-5, "graph maps")
    close(s1, gs, 1e-5, "graph scores")
    local m2, s2 = m:forward(x2)
    gm, gs = r:run(x2:to("cpu")) -- host images are copied into the captured input
    close(m2, gm, 1e-5, "graph maps, second input")
    close(s2, gs, 1e-5, "graph scores, second input")
    r:free()
    -- a capture that has to wait for the device fails with the reason, and the device keeps working
    local ok, err = pcall(device.capture, function() return m:forward(x1):to("cpu") end, DEV)
    assert.is_false(ok)
    assert.matches("cannot be recorded in a CUDA graph", tostring(err))
    assert.is_false(rn.cuda.capturing())
    close(m1, (m:forward(x1)), 0, "eager maps after a failed capture")
  end)
end)

describe("RealNet on lanes (the blocks' U-Nets side by side)", function()
  it("gives the one-stream maps and scores, eagerly and as a graph", function()
    if DEV == "cpu" then pending("lanes need a GPU") return end
    local before = rn.cuda.lanes()
    finally(function() rn.cuda.set_lanes(before) end) -- a failure must not leave the later tests on lanes
    local m = device.model(tiny_model(), DEV)
    local x = triplet(2, 4):to(DEV)
    rn.cuda.set_lanes(1)
    local m1, s1 = m:forward(x)
    rn.cuda.set_lanes(3)
    for rep = 1, 10 do -- races would show as differences of O(1) in some repetition
      local m2, s2 = m:forward(x)
      close(m1, m2, 1e-5, "maps on lanes, repetition " .. rep)
      close(s1, s2, 1e-5, "scores on lanes, repetition " .. rep)
    end
    local r = m:graph(x)
    for rep = 1, 5 do
      local gm, gs = r:run(x)
      close(m1, gm, 1e-5, "graph maps on lanes, replay " .. rep)
      close(s1, gs, 1e-5, "graph scores on lanes, replay " .. rep)
    end
    r:free()
  end)
end)

describe("RealNet with the bfloat16 autocast", function()
  it("stays near the float32 maps and scores, and replays as a graph", function()
    if DEV == "cpu" then pending("the autocast needs a GPU") return end
    finally(function() rn.cuda.set_bf16(false) end) -- a failure must not leave the later tests on bfloat16
    local m = device.model(tiny_model(), DEV)
    local x = triplet(2, 4):to(DEV)
    local m32, s32 = m:forward(x)
    rn.cuda.set_bf16(true)
    local m16, s16 = m:forward(x)
    -- inputs of ~30 convolutions rounded to 8 bits: ~4e-3 relative each, so a few 1e-2 at the end at most; a
    -- broken autocast (wrong layouts or types) is off by O(1)
    close(m32, m16, 0.1, "bf16 maps vs float32")
    close(s32, s16, 0.1, "bf16 scores vs float32")
    assert.is_true(rel_diff(m32, m16) > 1e-6, "bf16 maps equal the float32 ones: is the autocast on?")
    local r = m:graph(x)
    local gm, gs = r:run(x)
    -- not float32's 1e-5: cuBLAS may pick another kernel inside a capture, and a last-bit difference before a
    -- rounding to bfloat16 moves a value by a whole bfloat16 step (4e-3); a broken replay is off by O(1)
    close(m16, gm, 1e-2, "bf16 graph maps")
    close(s16, gs, 1e-2, "bf16 graph scores")
    r:free()
  end)
end)

describe("SDAS on cuda", function()
  local function tiny_unet()
    local net = rn.sdas.unet{model_channels = 16, num_res_blocks = 1, channel_mult = {1, 2},
                             attention_resolutions = {2}, seed = 3}
    net.image_size = 16
    return net
  end

  it("gives the CPU's hybrid loss and gradients", function()
    local d = rn.sdas.diffusion{steps = 100, learn_sigma = true}
    local cpu, gpu = tiny_unet(), tiny_unet():to(DEV)
    local x0 = rn.randn({4, 3, 16, 16}, {seed = 2}):clamp(-1, 1)
    local l1 = rn.sdas.training_loss(cpu, d, x0, {seed = 9})
    local l2 = rn.sdas.training_loss(gpu, d, x0:to(DEV), {seed = 9})
    close(l1, l2, 1e-3, "hybrid loss")
    l1:backward()
    l2:backward()
    local p1, p2 = cpu:parameters(), gpu:parameters()
    for i = 1, #p1 do
      local g1 = p1[i]:grad()
      if g1 then close(g1, p2[i]:grad(), 2e-3, "gradient " .. i) end
    end
  end)

  it("draws the CPU's DDIM sample from the same seed, with strength", function()
    local cpu, gpu = tiny_unet(), tiny_unet():to(DEV)
    cpu:eval()
    gpu:eval()
    local o = {steps = 4, method = "ddim", strength = 0.2, seed = 11}
    local a = rn.sdas.sampler(cpu, o):sample(2, {3, 16, 16})
    o.device = DEV
    local b = rn.sdas.sampler(gpu, o):sample(2, {3, 16, 16})
    close(a, b, 2e-3, "sample")
  end)
end)

describe("the commands with --device cuda", function()
  local function sh(args) return H.sh(BIN, dir, args) end

  it("train, eval, predict, sdas train and sdas sample run end to end", function()
    rn.demo_data.make(dir .. "/demo", {seed = 1, size = 64, train = 8, test_good = 2, test_defect = 2})
    local steps = {
      "train --data demo --category demo_surface --epochs 1 --image-size 64 --out run_t",
      "eval run_t",
      "predict run_t demo/demo_surface/test/good --maps maps",
      "sdas train --data demo --category demo_surface --steps 2 --batch 2 --image-size 32 --out run_s "
        .. "--model.model_channels=16 --model.attention_resolutions=4",
      "sdas sample run_s --n 2 --steps 4 --batch 2 --out samples",
    }
    if DEV ~= "cpu" then
      steps[#steps + 1] = "predict run_t demo/demo_surface/test --cuda-graph --tf32"
      steps[#steps + 1] = "predict run_t demo/demo_surface/test --cuda-graph --bf16"
    end
    for _, cmd in ipairs(steps) do
      local rc, out = sh(cmd .. " --device " .. DEV)
      assert.equal(0, rc, cmd .. "\n" .. out)
    end
  end)
end)

describe("NCCL (data-parallel training)", function()
  it("joins a one-rank communicator and averages in place (the identity)", function()
    if DEV == "cpu" then
      assert.is_false(rn.nccl.built() and rn.cuda.available()) -- a CPU run has nothing to join
      return
    end
    assert.is_true(rn.nccl.built(), "this CUDA build has no NCCL (nccl.h was not found at build time)")
    local comm = rn.nccl.join(rn.nccl.unique_id(), 1, 0, 0)
    local t = rn.tensor({1, 2, 3}):to("cuda")
    comm:all_reduce_mean({t})
    assert.are.same({1, 2, 3}, device.host(t):totable())
    comm:close()
    -- two ranks need two GPUs (NCCL refuses two ranks on one device): train --devices 0,1 where there are two
    if rn.cuda.device_count() >= 2 then
      local rc, out = H.sh(BIN, dir, "train --data demo --category demo_surface --epochs 1 --image-size 64 "
        .. "--out run_dp --devices 0,1")
      assert.equal(0, rc, out)
      assert.matches("nccl transport", out)
    end
  end)
end)
