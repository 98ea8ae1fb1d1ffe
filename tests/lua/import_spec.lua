-- `realnet import` through the binary ($REALNET_BIN) on safetensors files and .npy folders the test writes
-- itself (torchvision naming with unfolded batch norms, engine naming, an unmappable tensor, a lying header)
-- and on the real exports of ../shared when present.
local rn = require "realnet"
local H = require "rnhelp"

local bin = assert(os.getenv("REALNET_BIN"), "REALNET_BIN must point at the built realnet binary")
local shared = os.getenv("REALNET_SHARED") or "../shared"
local weights = shared .. "/weights"

local dir = H.tmpdir()
local q, slurp, spit = H.q, H.slurp, H.spit

-- Runs `realnet <args>`; returns stdout, stderr, exit code.
local function run(args, env) return H.run(bin, dir, args, {env = env}) end

local function f32bytes(t)
  local v, parts = H.flat(t), {}
  for i = 1, #v, 200 do
    local j = math.min(i + 199, #v)
    parts[#parts + 1] = string.pack("<" .. ("f"):rep(j - i + 1), table.unpack(v, i, j))
  end
  return table.concat(parts)
end

-- A safetensors file from {{name, dtype, shape, bytes}, ...} in the given order.
local function safetensors(path, entries)
  local parts, data, off = {}, {}, 0
  for _, e in ipairs(entries) do
    parts[#parts + 1] = ('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}'):format(e[1], e[2],
      table.concat(e[3], ","), off, off + #e[4])
    data[#data + 1] = e[4]
    off = off + #e[4]
  end
  local header = "{" .. table.concat(parts, ",") .. "}"
  return spit(path, string.pack("<I8", #header) .. header .. table.concat(data))
end

local function npy(path, t)
  local shape = t:shape()
  local dict = ("{'descr': '<f4', 'fortran_order': False, 'shape': (%s%s), }"):format(table.concat(shape, ", "),
    #shape == 1 and "," or "")
  dict = dict .. (" "):rep(63 - (10 + #dict) % 64) .. "\n"
  os.execute("mkdir -p " .. q(path:match("^(.*)/")))
  return spit(path, "\147NUMPY\1\0" .. string.pack("<I2", #dict) .. dict .. f32bytes(t))
end

-- conv1 and layer1 of a random resnet18 (seed 3): the reference backbone and its engine-named tensors.
local src = rn.backbone("resnet18", { seed = 3 })
local stem = {}
for name, t in pairs(src:state_dict()) do
  if name:match("^conv1%.") or name:match("^layer1%.") then stem[name] = t end
end
local x = rn.randn({ 1, 3, 32, 32 }, { seed = 9 })
local want = src:forward(x)[1]

-- The same weights in torchvision's naming: convs without bias, batch norms that fold to the identity scale.
local function torchvision_file(path, extra)
  local entries = {}
  local names = {}
  for n in pairs(stem) do names[#names + 1] = n end
  table.sort(names)
  for _, n in ipairs(names) do
    local t = stem[n]
    local conv, kind = n:match("^(.*)%.(%a+)$")
    if kind == "weight" then
      entries[#entries + 1] = { n, "F32", t:shape(), f32bytes(t) }
    else
      local bn = conv:gsub("conv(%d)$", "bn%1")
      local c = t:shape()[1]
      entries[#entries + 1] = { bn .. ".weight", "F32", { c }, f32bytes(rn.ones(c)) }
      entries[#entries + 1] = { bn .. ".bias", "F32", { c }, f32bytes(t) }
      entries[#entries + 1] = { bn .. ".running_mean", "F32", { c }, f32bytes(rn.zeros(c)) }
      entries[#entries + 1] = { bn .. ".running_var", "F32", { c }, f32bytes(rn.full({ c }, 1 - 1e-5)) }
      entries[#entries + 1] = { bn .. ".num_batches_tracked", "I64", {}, string.pack("<i8", 100) }
    end
  end
  entries[#entries + 1] = { "fc.weight", "F32", { 2, 512 }, f32bytes(rn.zeros(2, 512)) }
  for _, e in ipairs(extra or {}) do entries[#entries + 1] = e end
  return safetensors(path, entries)
end

local function close_to_want(h5)
  local bb <close> = rn.backbone("resnet18", { weights = h5, layers = { 1 } })
  local got = bb:forward(x)[1]
  local scale = math.max(math.abs(want:max():item()), math.abs(want:min():item()))
  return H.maxdiff(got, want) <= 1e-5 * scale
end

describe("realnet import", function()
  teardown(function()
    src:free()
    os.execute("rm -rf " .. q(dir))
  end)

  it("converts torchvision naming (batch norms folded) and reports what it could not map", function()
    local file = torchvision_file(dir .. "/tv.safetensors",
      { { "mystery.tensor", "F32", { 3 }, f32bytes(rn.ones(3)) } })
    local out, err, code = run("import " .. q(file) .. " --arch resnet18 --out " .. q(dir .. "/tv.h5"))
    assert.are.equal(0, code, err)
    assert.matches("10 weights loaded", out)
    assert.matches("mystery%.tensor", out)
    assert.matches("wrote .*tv%.h5: 10 tensors for resnet18; stages layer1, layer2 %(absent%)", out)
    assert.matches("1 source tensors could not be mapped", err)
    assert.is_true(close_to_want(dir .. "/tv.h5"))
    local f <close> = assert(rn.h5.open(dir .. "/tv.h5"))
    assert.is_true(f:has("/layer1/0/conv1/weight"))
    assert.is_true(f:has("/conv1/bias"))
    local a = f:attrs()
    assert.are.equal("resnet18", a.arch)
    assert.are.equal("layer1", a.stages)
    assert.are.equal(1, a.format_version)
    -- a stage the file lacks is refused when requested
    assert.matches("layer2", H.err(rn.backbone, "resnet18", { weights = dir .. "/tv.h5", layers = { 2 } }))
  end)

  it("fails with --strict on unmappable tensors and leaves no output behind", function()
    local file = torchvision_file(dir .. "/strict.safetensors",
      { { "mystery.tensor", "F32", { 3 }, f32bytes(rn.ones(3)) } })
    local _, err, code = run("import " .. q(file) .. " --arch resnet18 --strict --out " .. q(dir .. "/strict.h5"))
    assert.are.equal(1, code)
    assert.matches("mystery%.tensor", err)
    assert.is_nil(rn.file_type(dir .. "/strict.h5"))
    for _, name in ipairs(rn.listdir(dir)) do assert.is_nil(name:match("%.tmp"), name) end
  end)

  it("converts a folder of .npy files in engine naming", function()
    for name, t in pairs(stem) do npy(dir .. "/npy/" .. name:gsub("%.", "/") .. ".npy", t) end
    local out, err, code = run("import " .. q(dir .. "/npy") .. " --arch resnet18 --out " .. q(dir .. "/npy.h5"))
    assert.are.equal(0, code, err)
    assert.matches("10 weights loaded", out)
    assert.is_true(close_to_want(dir .. "/npy.h5"))
  end)

  it("refuses bad usage, unknown files and lying headers with clear messages", function()
    local _, err, code = run("import " .. q(dir .. "/tv.safetensors") .. " --out x.h5")
    assert.are.equal(2, code)
    assert.matches("%-%-arch is required", err)
    _, err, code = run("import " .. q(dir .. "/tv.safetensors") .. " --arch resnet19 --out x.h5")
    assert.are.equal(2, code)
    assert.matches("unknown architecture 'resnet19'", err)
    _, err, code = run("import " .. q(dir .. "/absent.safetensors") .. " --arch resnet18 --out " .. q(dir .. "/a.h5"))
    assert.are.equal(1, code)
    assert.matches("cannot open", err)
    local lying = spit(dir .. "/lying.safetensors", string.pack("<I8", 60) ..
      '{"conv1.weight":{"dtype":"F32","shape":[64,3,7,7],"data_offsets":[0,37632]}}')
    _, err, code = run("import " .. q(lying) .. " --arch resnet18 --out " .. q(dir .. "/l.h5"))
    assert.are.equal(1, code)
    assert.matches("lying%.safetensors", err)
    os.execute("mkdir -p " .. q(dir .. "/empty"))
    _, err, code = run("import " .. q(dir .. "/empty") .. " --arch resnet18 --out " .. q(dir .. "/e.h5"))
    assert.are.equal(1, code)
    assert.matches("empty", err)
    _, err, code = run("import --help")
    assert.are.equal(0, code)
    assert.matches("usage: realnet import", err)
  end)

  it("converts the real exports of ../shared to files that load to the same network", function()
    if rn.file_type(weights .. "/squeezenet1.1_imagenet.safetensors") ~= "file" then
      pending("../shared/weights absent")
      return
    end
    local cases = {
      { "squeezenet1_1", "squeezenet1.1_imagenet" }, { "mobilenetv2", "mobilenetv2_imagenet_bnfolded" },
      { "resnet18", "resnet18_imagenet_bnfolded_conv1-layer3" }, { "resnet50v2", "resnet50v2_imagenet_stages1-3" },
    }
    local img = rn.randn({ 1, 3, 64, 64 }, { seed = 2 })
    for _, c in ipairs(cases) do
      local file, h5 = weights .. "/" .. c[2] .. ".safetensors", dir .. "/" .. c[1] .. ".h5"
      local out, err, code = run("import " .. q(file) .. " --arch " .. c[1] .. " --out " .. q(h5))
      assert.are.equal(0, code, err)
      assert.matches("wrote", out)
      assert.are.equal("", err, c[1]) -- every tensor mapped (or deliberately ignored)
      local a <close> = rn.backbone(c[1], { weights = file })
      local b <close> = rn.backbone(c[1], { weights = h5 })
      local fa, fb = a:forward(img), b:forward(img)
      assert.are.equal(#fa, #fb)
      for i = 1, #fa do assert.are.equal(0, H.maxdiff(fa[i], fb[i]), c[1]) end
    end
  end)
end)
