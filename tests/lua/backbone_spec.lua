-- rn.backbone: stage shapes of every architecture on random weights, stage selection, the torchvision parity
-- fixture through the binding, loading and stage refusal, userdata lifetime, bad input, and the real ImageNet
-- weights of ../shared (SqueezeNet reference logits and photo classes; skipped when ../shared is absent), and
-- `realnet bench backbone` and `realnet bench realnet` through the binary ($REALNET_BIN; output format only,
-- speed is never asserted).
local rn = require "realnet"
local H = require "rnhelp"

local fixtures = os.getenv("REALNET_FIXTURES") or "tests/fixtures"
local shared = os.getenv("REALNET_SHARED") or "../shared"
local weights = shared .. "/weights"
local have_shared = rn.file_type(weights .. "/squeezenet1.1_imagenet.safetensors") == "file"

-- Per-channel means over (N,H,W) and 256 strided samples, as tests/fixtures/gen_backbone.py summarises.
local function summary(t)
  local c = t:shape()[2]
  local out = H.flat(t:dim() == 4 and t:permute(2, 1, 3, 4):reshape(c, -1):mean(2) or t:mean(1))
  local flat = H.flat(t)
  for k = 0, 255 do out[#out + 1] = flat[k * #flat // 256 + 1] end
  return out
end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs `realnet <args>` with an optional environment prefix; returns stdout, stderr, exit code.
local function run(args, env)
  local bin = assert(os.getenv("REALNET_BIN"), "REALNET_BIN must point at the built realnet binary")
  local out, err = os.tmpname(), os.tmpname()
  local _, _, code = os.execute((env or "") .. " " .. q(bin) .. " " .. args .. " < /dev/null > " .. q(out) ..
    " 2> " .. q(err))
  local function slurp(p)
    local f = assert(io.open(p, "rb"))
    local s = f:read("a")
    f:close()
    os.remove(p)
    return s
  end
  return slurp(out), slurp(err), code
end

local function top(logits, k)
  local v = H.flat(logits)
  local idx = {}
  for i = 1, #v do idx[i] = i end
  table.sort(idx, function(a, b) return v[a] > v[b] end)
  return { table.unpack(idx, 1, k) }
end

describe("rn.backbone", function()
  it("lists its architectures", function()
    local archs = rn.backbone_archs()
    for _, a in ipairs { "resnet18", "resnet34", "resnet50", "wide_resnet50_2", "resnet50v2", "mobilenetv2",
                         "efficientnet_b4", "squeezenet1_1" } do
      assert.is_truthy(table.concat(archs, " "):find(a, 1, true), a)
    end
  end)

  it("returns every stage with the advertised channels and strides on random weights", function()
    -- resnet34 and wide_resnet50_2 repeat the blocks of resnet18 and resnet50 (their random init alone takes
    -- seconds); the C parity tests run them, here only their stage tables are checked.
    local x = rn.randn({ 1, 3, 32, 32 }, { seed = 1 })
    for _, arch in ipairs { "resnet18", "resnet50", "resnet50v2", "mobilenetv2", "efficientnet_b4", "squeezenet1_1" } do
      local bb <close> = rn.backbone(arch, { seed = 1 })
      local stages = bb:stages()
      local feats = bb:forward(x)
      assert.are.equal(#stages, #feats, arch)
      assert.are.equal(#stages, #bb)
      for i, s in ipairs(stages) do
        assert.is_true(s.ready)
        assert.are.equal(i, s.output)
        local shape = feats[i]:shape()
        assert.are.equal(s.channels, shape[2], arch .. " " .. s.name)
        if s.reduction > 0 and arch ~= "squeezenet1_1" then -- SqueezeNet pools with ceil mode, no padding
          assert.are.same({ 1, s.channels, 32 // s.reduction, 32 // s.reduction }, shape, arch .. " " .. s.name)
        end
        assert.are.equal("float32", feats[i]:dtype())
      end
    end
    for arch, want in pairs { resnet34 = { 64, 128, 256, 512 }, wide_resnet50_2 = { 256, 512, 1024, 2048 } } do
      local bb <close> = rn.backbone(arch)
      local got = {}
      for _, s in ipairs(bb:stages()) do got[#got + 1] = s.channels end
      assert.are.same(want, got, arch)
    end
  end)

  it("returns the requested stages, by index or name, in the order asked", function()
    local bb <close> = rn.backbone("resnet18", { layers = { 3, "layer1" }, seed = 2 })
    local f = bb:forward(rn.randn({ 2, 3, 32, 32 }, { seed = 1 }))
    assert.are.same({ 2, 256, 2, 2 }, f[1]:shape())
    assert.are.same({ 2, 64, 8, 8 }, f[2]:shape())
    local st = bb:stages()
    assert.are.equal(1, st[3].output)
    assert.are.equal(2, st[1].output)
    assert.is_nil(st[2].output)
    assert.matches("outputs layer3,layer1", tostring(bb))
    assert.are.equal("resnet18", bb:arch())
  end)

  it("agrees with torchvision on the committed parity fixture (random weights, seed 7)", function()
    local fx <close> = assert(rn.tensorset(fixtures .. "/backbone"))
    local x = fx:load("x")
    for _, arch in ipairs { "resnet18", "squeezenet1_1" } do
      local bb <close> = rn.backbone(arch, { seed = 7 })
      local feats = bb:forward(x)
      for i, s in ipairs(bb:stages()) do
        local want = H.flat(fx:load(arch .. "_" .. s.name))
        local got = summary(feats[i])
        local scale, worst = 0, 0
        for k = 1, #want do scale = math.max(scale, math.abs(want[k])) end
        for k = 1, #want do worst = math.max(worst, math.abs(got[k] - want[k])) end
        assert.is_true(worst <= 1e-4 * scale, ("%s %s: %g > 1e-4 * %g"):format(arch, s.name, worst, scale))
      end
    end
  end)

  it("loads engine-named tensors and refuses a requested stage whose weights are absent", function()
    local src <close> = rn.backbone("resnet18", { seed = 3 })
    local sd = src:state_dict()
    local part = {}
    for name, t in pairs(sd) do
      if name:match("^conv1%.") or name:match("^layer1%.") then part[name] = t end
    end
    local bb <close> = rn.backbone("resnet18", { seed = 4, layers = { 1 } })
    local report = bb:load_tensors(part)
    assert.are.equal(10, report.loaded) -- conv1 and the 4 convs of layer1, weight and bias each
    assert.are.equal(1, report.stages_ready)
    assert.matches("layer2", report.text)
    local x = rn.randn({ 1, 3, 32, 32 }, { seed = 5 })
    assert.are.equal(0, H.maxdiff(bb:forward(x)[1], src:forward(x)[1]))
    local ready = {}
    for _, s in ipairs(bb:stages()) do ready[#ready + 1] = s.ready end
    assert.are.same({ true, false, false, false }, ready)
    local refuse <close> = rn.backbone("resnet18", { layers = { 2 } })
    assert.matches("layer2", H.err(refuse.load_tensors, refuse, part))
    part["mystery.weight"] = rn.zeros(3)
    assert.matches("mystery%.weight", H.err(bb.load_tensors, bb, part))
    assert.are.equal(1, bb:load_tensors(part, { allow_unmapped = true }).unmapped)
    part["conv1.weight"] = rn.zeros(64, 3, 5, 5)
    assert.matches("conv1%.weight", H.err(bb.load_tensors, bb, part, { allow_unmapped = true }))
  end)

  it("frees its weights through free, __close and __gc, and refuses use afterwards", function()
    local bb = rn.backbone("mobilenetv2")
    do
      local cl <close> = rn.backbone("mobilenetv2")
    end
    bb:free()
    bb:free()
    assert.are.equal("backbone (freed)", tostring(bb))
    assert.matches("freed", H.err(bb.forward, bb, rn.zeros(1, 3, 32, 32)))
    collectgarbage()
  end)

  it("refuses bad arguments and inputs with messages naming them", function()
    assert.matches("unknown arch \"resnet19\"", H.err(rn.backbone, "resnet19"))
    assert.matches("out of range 1%.%.4", H.err(rn.backbone, "resnet18", { layers = { 5 } }))
    assert.matches("no stage 'layerX'", H.err(rn.backbone, "resnet18", { layers = { "layerX" } }))
    assert.matches("opts.layers is empty", H.err(rn.backbone, "resnet18", { layers = {} }))
    assert.matches("opts.seed", H.err(rn.backbone, "resnet18", { seed = -1 }))
    assert.matches("cannot open", H.err(rn.backbone, "resnet18", { weights = "/nonexistent.safetensors" }))
    local bb <close> = rn.backbone("resnet18", { layers = { 1 } })
    assert.matches("%[N,3,H,W%]", H.err(bb.forward, bb, rn.zeros(1, 4, 32, 32)))
    assert.matches("float32", H.err(bb.forward, bb, rn.zeros({ 1, 3, 32, 32 }, { dtype = "uint8" })))
    assert.matches("tensor expected", H.err(bb.forward, bb, "x"))
  end)

  describe("with the real ImageNet weights of ../shared", function()
    it("reproduces SqueezeNet 1.1's reference logits and classifies the photos", function()
      if not have_shared then pending("../shared/weights absent") return end
      local bb <close> = rn.backbone("squeezenet1_1", { weights = weights .. "/squeezenet1.1_imagenet.safetensors" })
      local io_ <close> = assert(rn.tensorset(weights .. "/squeezenet1.1_reference_io.safetensors"))
      for i = 0, 2 do
        local f = bb:forward(io_:load("input_" .. i))
        assert.is_true(H.maxdiff(f[#f], io_:load("output_" .. i)) <= 1e-3, "output_" .. i)
      end
      local classes = {}
      local fh = assert(io.open(weights .. "/imagenet_classes.json"))
      for s in fh:read("a"):gmatch('"(.-)"') do classes[#classes + 1] = s end
      fh:close()
      assert.are.equal(1000, #classes)
      local function classify(photo)
        local img = assert(rn.image.read(shared .. "/data/photos/" .. photo, { channels = 3 }))
        local x = rn.image.normalize(rn.image.resize(img, 224, 224)):reshape(1, 3, 224, 224)
        local f = bb:forward(x)
        local names = {}
        for _, k in ipairs(top(f[#f], 3)) do names[#names + 1] = classes[k] end
        return names
      end
      -- PyTorch with these weights ranks Egyptian cat, tiger cat, tabby for chelsea.png (see test_backbone_real.c)
      assert.are.same({ "Egyptian cat", "tiger cat", "tabby, tabby cat" }, classify("chelsea.png"))
      assert.are.equal("espresso", classify("coffee.png")[1])
    end)

    it("loads the partial exports and refuses their absent stage only when requested", function()
      if not have_shared then pending("../shared/weights absent") return end
      local cases = {
        { "resnet50v2", "resnet50v2_imagenet_stages1-3.safetensors", { 256, 512, 1024 } },
        { "resnet18", "resnet18_imagenet_bnfolded_conv1-layer3.safetensors", { 64, 128, 256 } },
      }
      for _, c in ipairs(cases) do
        local bb <close>, report = rn.backbone(c[1], { weights = weights .. "/" .. c[2] })
        assert.are.equal(3, report.stages_ready)
        local f = bb:forward(rn.randn({ 1, 3, 64, 64 }, { seed = 1 }))
        assert.are.equal(3, #f)
        for i = 1, 3 do assert.are.equal(c[3][i], f[i]:shape()[2]) end
        assert.matches("layer4", H.err(rn.backbone, c[1], { weights = weights .. "/" .. c[2], layers = { 4 } }))
      end
      local mb <close> = rn.backbone("mobilenetv2", { weights = weights .. "/mobilenetv2_imagenet_bnfolded.safetensors",
                                                      layers = { 1, 2, 3, 4 } })
      assert.are.equal(4, #mb:forward(rn.randn({ 1, 3, 64, 64 }, { seed = 1 })))
    end)
  end)
end)

describe("realnet bench backbone", function()
  it("prints images per second", function()
    local out, err, code = run("bench backbone --arch resnet18 --batch 1 --res 32 --seconds 0 --threads 1")
    assert.are.equal(0, code, err)
    assert.matches("realnet resnet18 batch=1 res=32 threads=1: [%d%.]+ img/s", out)
  end)

  it("refuses unknown architectures and options", function()
    local _, err, code = run("bench backbone --arch resnet19 --seconds 0")
    assert.are.equal(1, code)
    assert.matches("unknown arch", err)
    _, err, code = run("bench backbone --bogus")
    assert.are.equal(1, code)
    assert.matches("unknown option %-%-bogus", err)
    _, err, code = run("bench backbone --batch 0")
    assert.are.equal(1, code)
  end)

  it("times RealNet inference (cpu preset at 64x64), its stages and, with --profile, its modules", function()
    local out, err, code = run("bench realnet --device cpu --preset cpu --res 64 --batch 1 --seconds 0 --threads 1 " ..
      "--profile")
    assert.are.equal(0, code, err)
    assert.matches("stages %(ms per batch%): backbone [%d%.]+", out)
    assert.matches("Conv2d%(", out)                       -- a profile row per module class and shape
    assert.matches("garbage collection per batch", out)
    assert.matches("kernel calls per batch: %d+", out)    -- the op layer's kernel-table calls of one forward
    assert.matches("realnet inference: preset=cpu arch=resnet50v2 res=64 dims=384 batch=1 device=cpu " ..
      "%(1 threads%) float32: [%d%.]+ img/s", out)
    _, err, code = run("bench realnet --device cpu --graph --seconds 0")
    assert.are.equal(1, code)
    assert.matches("--graph needs --device cuda", err, 1, true)
    for _, f in ipairs{"--tf32", "--bf16"} do
      _, err, code = run("bench realnet --device cpu --seconds 0 " .. f)
      assert.are.equal(1, code)
      assert.matches(f .. " needs --device cuda", err, 1, true)
    end
    _, err, code = run("bench realnet --device cpu --lanes 4 --seconds 0")
    assert.are.equal(1, code)
    assert.matches("--lanes needs --device cuda", err, 1, true)
    _, err, code = run("bench realnet --lanes 9")
    assert.are.equal(1, code)
    assert.matches("--lanes must be 1 .. 8", err, 1, true)
    _, err, code = run("bench realnet --res")
    assert.are.equal(1, code)
    assert.matches("--res needs a positive number", err, 1, true)
  end)

  it("runs the PyTorch peer in the same run and prints the ratio", function()
    local peer = shared .. "/bench/torch_peer.py"
    if rn.file_type(peer) ~= "file" or not os.execute("command -v python3 >/dev/null 2>&1") then
      pending("torch_peer.py or python3 absent")
      return
    end
    local out, err, code = run("bench backbone --arch resnet18 --batch 1 --res 32 --seconds 0 --threads 1 --peer",
      "REALNET_SHARED=" .. q(shared))
    if code ~= 0 and err:match("No module named") then
      pending("python3 lacks torch/torchvision")
      return
    end
    assert.are.equal(0, code, err)
    assert.matches("img/s", out)
    assert.matches("peer resnet18 batch=1 res=32 threads=1 img_per_s=", out)
    assert.matches("ratio realnet/pytorch: [%d%.]+x", out)
  end)
end)
