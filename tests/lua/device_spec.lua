-- --device: the choice is checked before any work (a CPU-only build or a machine without a GPU fails with a clear
-- message and exit status 1), backbones move between devices, and the device forward (every node through the op
-- layer, as it runs on a GPU) gives the CPU forward's features. Needs no GPU; the CUDA-only checks skip with one.
local rn = require "realnet"
local device = require "realnet.device"
local H = require "rnhelp"

local BIN = os.getenv("REALNET_BIN") or "realnet"
local GPU = rn.cuda.available()
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
rn.demo_data.make(dir .. "/demo", {seed = 1, size = 64, train = 4, test_good = 1, test_defect = 1})

local function sh(args) return H.sh(BIN, dir, args) end

local function exists(p) return rn.file_type(p) ~= nil end

describe("device.resolve", function()
  it("takes cpu (and nil) and names why an unknown or unusable device is refused", function()
    assert.equal("cpu", device.resolve("cpu"))
    assert.equal("cpu", device.resolve(nil))
    local ok, err = pcall(device.resolve, "gpu")
    assert.is_false(ok)
    assert.matches("device gpu is not usable", err, 1, true)
    if not GPU then
      ok, err = pcall(device.resolve, "cuda")
      assert.is_false(ok)
      assert.matches("device cuda is not usable", err, 1, true)
      assert.matches(rn.cuda.built() and "cuda" or "no CUDA", err)
    end
  end)
end)

describe("backbone devices", function()
  it("starts on the cpu, moves there as a no-op, and refuses an unusable device at creation and in :to", function()
    local bb <close> = rn.backbone("resnet18", {layers = {1, 2}})
    assert.equal("cpu", bb:device())
    assert.equal(bb, bb:to("cpu"))
    assert.has_error(function() bb:to("tpu") end)
    if not GPU then
      local ok, err = pcall(bb.to, bb, "cuda")
      assert.is_false(ok)
      assert.matches("cuda", err)
      assert.equal("cpu", bb:device()) -- unchanged after the failed move
      ok, err = pcall(rn.backbone, "resnet18", {device = "cuda:0"})
      assert.is_false(ok)
      assert.matches("backbone resnet18: device cuda:0", err, 1, true)
    end
  end)

  -- every node kind: conv + residual + max pool (resnet18), affine (resnet50v2), relu6 and groups (mobilenetv2),
  -- concat and ceil-mode pooling (squeezenet1_1), squeeze-excitation gap / mul / silu / sigmoid (efficientnet_b4)
  for _, arch in ipairs{"resnet18", "resnet50v2", "mobilenetv2", "squeezenet1_1", "efficientnet_b4"} do
    it(arch .. ": the device forward (op layer) matches the CPU forward", function()
      local bb <close> = rn.backbone(arch, {seed = 3})
      local x = rn.randn({2, 3, 64, 64}, {generator = rn.generator(7, 0)})
      local a = bb:forward(x)
      local b = bb:use_op_path(true):forward(x)
      assert.equal(#a, #b)
      assert.is_true(#a >= 3)
      for i = 1, #a do
        assert.same(a[i]:shape(), b[i]:shape())
        local scale = rn.abs(a[i]):max():item()
        local diff = rn.abs(a[i] - b[i]):max():item()
        assert.is_true(diff <= 1e-4 * math.max(scale, 1), ("%s output %d: max diff %g (scale %g)"):format(arch, i, diff, scale))
      end
    end)
  end

  it("keeps a CUDA backbone's features on the GPU (GPU only)", function()
    if not GPU then pending("no GPU") return end
    local bb <close> = rn.backbone("resnet18", {layers = {1, 2}, device = "cuda"})
    local x = rn.randn({1, 3, 64, 64}, {generator = rn.generator(7, 0)})
    local f = bb:forward(x:to("cuda"))
    assert.equal("cuda:0", f[1]:device())
    local ref <close> = rn.backbone("resnet18", {layers = {1, 2}})
    local r = ref:forward(x)
    assert.is_true(rn.abs(f[2]:to("cpu") - r[2]):max():item() < 1e-2)
    assert.has_error(function() bb:forward(x) end) -- a host input to a device backbone
  end)
end)

describe("--device on the commands", function()
  local cases = {
    {"train", "train --data demo --category demo_surface --epochs 1 --image-size 32 --out run_t --device cuda", "run_t"},
    {"eval", "eval nonexistent_run --device cuda"},
    {"predict", "predict nonexistent_run demo --device cuda"},
    {"sdas train", "sdas train --data demo --category demo_surface --steps 1 --out run_s --device cuda", "run_s"},
    {"sdas sample", "sdas sample nonexistent_run --out samples --device cuda", "samples"},
  }
  for _, c in ipairs(cases) do
    it(c[1] .. ": --device cuda without a usable GPU fails with status 1 before any work", function()
      if GPU then pending("a GPU is present") return end
      local rc, out = sh(c[2])
      assert.equal(1, rc, out)
      assert.matches("device cuda is not usable", out, 1, true)
      assert.is_nil(out:match("not a run directory"), out) -- the device is checked before the run is read
      if c[3] then assert.is_false(exists(dir .. "/" .. c[3]), c[3] .. " was created") end
    end)
  end

  it("predict refuses --tf32, --bf16, --cuda-graph and --lanes without a CUDA device, before reading the model", function()
    for _, flag in ipairs{"--tf32", "--bf16", "--cuda-graph", "--lanes 4"} do
      local rc, out = sh("predict nonexistent_run demo " .. flag)
      assert.equal(1, rc, out)
      assert.matches("needs a CUDA device", out, 1, true)
    end
    local rc, out = sh("predict nonexistent_run demo --lanes 9")
    assert.equal(1, rc, out)
    assert.matches("lanes must be an integer 1 .. 8, got 9", out, 1, true)
  end)

  it("train records the device in the config and rejects a malformed one as a usage error", function()
    local rc, out = sh("train --data demo --category demo_surface --device cpu --print-config")
    assert.equal(0, rc, out)
    assert.matches('device = "cpu"', out, 1, true)
    rc, out = sh("train --data demo --category demo_surface --device gpu0")
    assert.equal(2, rc, out)
    assert.matches("trainer.device must be cpu, cuda or cuda:N", out, 1, true)
  end)

  it("every command lists --device in its help", function()
    for _, cmd in ipairs{"train", "eval", "predict", "sdas train", "sdas sample"} do
      local rc, out = sh(cmd .. " --help")
      assert.equal(0, rc, out)
      assert.matches("--device", out, 1, true)
    end
  end)
end)
