-- rn.synth: the foreground table and rule grammar, synth:batch on any dataset object (#ds, ds:get(i)) for
-- every source (masks non-empty, inside the foreground, A == I outside the mask), determinism from the seed,
-- clear errors, and `realnet synth-preview` on ../shared/data/magnetic_tile (pending when absent).
local rn = require "realnet"
local H = require "rnhelp"

local shared = os.getenv("REALNET_SHARED") or "../shared"
local have_shared = rn.file_type(shared .. "/data/magnetic_tile/train/good") == "directory"
  and rn.file_type(shared .. "/data/dtd_subset") == "directory"

local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "/tex/a' '" .. tmp .. "/tex/b'")

-- A fake dataset: float32 [3,H,W] images in [0,1]; a bright right half (the object) over a dark textured left.
local function fake_dataset(n, h, w)
  local items = {}
  for i = 1, n do
    local img = rn.rand({3, h, w}, {seed = i}):mul(0.2)
    local right = img:narrow(3, w // 2 + 1, w // 2)
    right:copy_(rn.add(right, 0.6))
    items[i] = {image = img, mask = rn.zeros({1, h, w}), label = 0, path = "fake" .. i}
  end
  return setmetatable({}, {
    __len = function() return n end,
    __index = {
      get = function(_, i) return items[i] end,
      info = function() return {normalize = false, category = "fake"} end,
    },
  })
end

-- Texture files for dtd (dir/*/*) and sia (dir/*) written with the engine's PNG writer.
for k, sub in ipairs{"a", "b"} do
  local t = rn.synth.core.from_chw(rn.rand({1, 3, 40, 48}, {seed = 100 + k}), "unit"):select(1, 1):contiguous()
  rn.image.write_png(("%s/tex/%s/t%d.png"):format(tmp, sub, k), t)
  rn.image.write_png(("%s/tex/t%d.png"):format(tmp, k), t)
end

local function maxabs(t) return t:abs():max():item() end

describe("rn.synth.foreground", function()
  local fg = rn.synth.foreground

  it("ships RealNet's table (spec 3.3)", function()
    assert.same({method = "otsu", channel = "gray", dark = true, close = 6, open = 6}, fg.lookup("bottle"))
    assert.same({method = "triangle", channel = "blue", dark = false, close = 8, open = 3}, fg.lookup("pcb3", "visa"))
    assert.same({method = "otsu", channel = "green", dark = true, close = 6, open = 0}, fg.lookup("connector"))
    assert.same({method = "otsu", channel = "gray", dark = false, close = 15, open = 6}, fg.lookup("01", "btad"))
    assert.equal("none", fg.lookup("cable").method)
    assert.equal("none", fg.lookup("capsules").method)
  end)

  it("returns nil and a warning text for an unknown category", function()
    local r, msg = fg.lookup("magnetic_tile")
    assert.is_nil(r)
    assert.truthy(msg:find("magnetic_tile", 1, true))
    assert.truthy(msg:find("not restricted", 1, true))
  end)

  it("lets a recipe's table override", function()
    local r = fg.lookup("bottle", nil, {bottle = "triangle_red_bright_c3"})
    assert.same({method = "triangle", channel = "red", dark = false, close = 3, open = 0}, r)
    r = fg.lookup("magnetic_tile", "mvtec", {mvtec = {magnetic_tile = {method = "otsu", bright = true, close = 6}}})
    assert.same({method = "otsu", channel = "gray", dark = false, close = 6, open = 0}, r)
  end)

  it("parses and rejects rule strings", function()
    assert.same({method = "otsu", channel = "gray", dark = true, close = 6, open = 6}, fg.parse("otsu_dark_c6_o6"))
    assert.same({method = "none", channel = "gray", dark = false, close = 0, open = 0}, fg.parse("none"))
    local r, msg = fg.parse("otsu_purple")
    assert.is_nil(r)
    assert.truthy(msg:find("purple", 1, true))
    assert.truthy(H.err(fg.normalize, "dark_c6"):find("no method", 1, true))
    assert.truthy(H.err(fg.normalize, {method = "kmeans"}):find("kmeans", 1, true))
  end)

  it("computes masks with the C rules", function()
    local ds = fake_dataset(1, 16, 20)
    local u8 = rn.synth.core.stack({ds:get(1).image}, "unit"):select(1, 1):contiguous()
    local m = rn.synth.foreground_mask(u8, "otsu_bright")
    assert.same({16, 20}, m:shape())
    local f = H.flat(m)
    assert.equal(0, f[1])       -- dark left
    assert.equal(1, f[20])      -- bright right
    m = rn.synth.foreground_mask(u8, "otsu_dark")
    assert.equal(1, H.flat(m)[1])
  end)
end)

describe("rn.synth.new / batch", function()
  local ds = fake_dataset(5, 32, 32)

  local function check(A, I, M, fgrule)
    assert.same({4, 3, 32, 32}, A:shape())
    assert.same({4, 3, 32, 32}, I:shape())
    assert.same({4, 1, 32, 32}, M:shape())
    -- binary, non-empty per sample, A == I outside
    for i = 1, 4 do
      local m = M:select(1, i)
      assert.is_true(m:sum():item() > 0)
    end
    assert.equal(0, maxabs(M:mul(M):sub(M)))
    local outside = rn.sub(rn.ones_like(M), M)
    assert.equal(0, maxabs(rn.sub(A, I):mul(outside)))
    if fgrule then -- inside the foreground (the bright right half)
      local I8 = rn.synth.core.from_chw(I, "unit")
      for i = 1, 4 do
        local fgm = rn.synth.foreground_mask(I8:select(1, i):contiguous(), fgrule):float()
        local bad = M:select(1, i):select(1, 1):mul(rn.sub(rn.ones_like(fgm), fgm)):sum():item()
        assert.equal(0, bad)
      end
    end
  end

  for _, src in ipairs{"dtd", "sia", "cutpaste", "nsa"} do
    it("gives valid triplets for " .. src, function()
      local s = rn.synth.new{source = src, dir = tmp .. "/tex", seed = 4, foreground = "otsu_bright"}
      local A, I, M = s:batch(ds, 4)
      check(A, I, M, "otsu_bright")
      assert.same({samples = 4, fallbacks = 0}, s:stats())
      -- the same seed and the same item choice give the same batch
      local s2 = rn.synth.new{source = src, dir = tmp .. "/tex", seed = 4, foreground = "otsu_bright"}
      local A2, _, M2 = s2:batch(ds, 4)
      assert.equal(0, maxabs(rn.sub(A, A2)))
      assert.equal(0, maxabs(rn.sub(M, M2)))
      -- a second batch draws new samples
      local _, _, M3 = s:batch(ds, 4)
      assert.is_true(maxabs(rn.sub(M, M3)) > 0)
    end)
  end

  it("uses the dataset's category and warns (no error) when it is unknown", function()
    local s = rn.synth.new{source = "cutpaste", seed = 1, quiet = true}
    local A, I, M = s:batch(ds, 4, {indices = {1, 2, 3, 4}})
    check(A, I, M)
    assert.equal("none (all pixels)", s:describe().foreground)
  end)

  it("returns uint8 and ImageNet outputs on request", function()
    local s = rn.synth.new{source = "cutpaste", seed = 2, foreground = false}
    local A, I, M = s:batch(ds, 2, {output = "uint8"})
    assert.equal("uint8", A:dtype())
    assert.same({2, 32, 32, 3}, I:shape())
    assert.same({2, 32, 32}, M:shape())
    local An = s:batch(ds, 2, {output = "imagenet"})
    assert.is_true(An:min():item() < 0)
    local g = rn.synth.grid(A, M, I, "unit", 2)
    assert.same({2 * 32 + 2, 3 * 32 + 4, 3}, g:shape())
  end)

  it("draws Perlin masks from a seed", function()
    local a, info = rn.synth.perlin_mask(64, 64, {seed = 7})
    local b = rn.synth.perlin_mask(64, 64, {seed = 7})
    assert.equal(0, maxabs(rn.sub(a:float(), b:float())))
    assert.truthy(info.rx >= 1 and info.rx <= 32 and info.degrees >= -90 and info.degrees <= 90)
  end)

  it("mixes sources per sample, independently of batch boundaries", function()
    local function mix()
      return rn.synth.mix({rn.synth.new{source = "dtd", dir = tmp .. "/tex", seed = 6, foreground = false},
                           rn.synth.new{source = "nsa", seed = 6, foreground = false}}, {seed = 6})
    end
    local stack = rn.synth.core.stack
    local imgs, others = {}, {}
    for i = 1, 4 do imgs[i] = ds:get(i).image; others[i] = ds:get(6 - i).image end -- NSA partners: other images
    local I8, O8 = stack(imgs, "unit"), stack(others, "unit")
    local m = mix()
    local A, M = m:apply(I8, O8)
    assert.same({4, 32, 32, 3}, A:shape())
    assert.same({samples = 4, fallbacks = 0}, m:stats())
    -- both parts are used over a few samples, and each sample is exactly its part's sample of that number
    local used = {}
    for k = 0, 15 do used[m:part_of(k)] = true end
    assert.is_true(used[1] and used[2])
    for i = 1, 4 do
      local part = mix().parts[m:part_of(i - 1)]
      part.count = i - 1
      local a = part:apply(I8:narrow(1, i, 1), O8:narrow(1, i, 1))
      assert.equal(0, maxabs(rn.sub(a:float(), A:narrow(1, i, 1):float())))
    end
    -- two calls of two samples give the same anomalies as one call of four
    local m2 = mix()
    local a1, k1 = m2:apply(I8:narrow(1, 1, 2), O8:narrow(1, 1, 2))
    local a2, k2 = m2:apply(I8:narrow(1, 3, 2), O8:narrow(1, 3, 2))
    assert.equal(0, maxabs(rn.sub(rn.cat({a1, a2}, 1):float(), A:float())))
    assert.equal(0, maxabs(rn.sub(rn.cat({k1, k2}, 1):float(), M:float())))
    assert.equal("dtd,nsa", m:describe().source)
    check(mix():batch(ds, 4)) -- and on a dataset, like one synthesiser (AFS draws its batches so)
    assert.truthy(H.err(m.apply, m, I8):find("partner", 1, true))
    assert.truthy(H.err(rn.synth.mix, {}):find("list", 1, true))
  end)

  it("raises clear errors", function()
    assert.truthy(H.err(rn.synth.new, {source = "perlin"}):find("unknown source", 1, true))
    assert.truthy(H.err(rn.synth.new, {source = "dtd"}):find("needs dir", 1, true))
    assert.truthy(H.err(rn.synth.new, {source = "dtd", dir = tmp .. "/nope"}):find("nope", 1, true))
    assert.truthy(H.err(rn.synth.new, {source = "cutpaste", opacity = {0.9, 0.1}}):find("opacity", 1, true))
    assert.truthy(H.err(rn.synth.new, {source = "cutpaste", opacity = {0.5, 1}, retries = -1, category = "bottle"})
      :find("retries", 1, true))
    assert.truthy(H.err(rn.synth.new, {source = "cutpaste", foreground = "otsu_mauve"}):find("mauve", 1, true))
    local s = rn.synth.new{source = "cutpaste", foreground = false}
    assert.truthy(H.err(s.batch, s, ds, 0):find("positive", 1, true))
    assert.truthy(H.err(s.batch, s, ds, 2, {indices = {1}}):find("indices", 1, true))
  end)
end)

describe("realnet synth-preview", function()
  local bin = os.getenv("REALNET_BIN")
  for _, src in ipairs{"dtd", "sia", "cutpaste", "nsa"} do
    it("writes a grid for " .. src .. " on magnetic_tile", function()
      if not have_shared or not bin then pending("../shared/data or REALNET_BIN absent") return end
      local out = ("%s/grid_%s.png"):format(tmp, src)
      local d = shared .. "/data"
      local extra = ({dtd = "--dtd " .. d .. "/dtd_subset", sia = "--sia " .. d .. "/magnetic_tile/test/good"})[src] or ""
      local cmd = ("%s synth-preview --data %s --category magnetic_tile --source %s %s --out %s --n 2 --size 64 "
        .. "--seed 3 2>&1"):format(bin, d, src, extra, out)
      local p = io.popen(cmd)
      local text = p:read("a")
      local ok = p:close()
      assert.is_true(ok, text)
      assert.truthy(text:find("wrote", 1, true))
      local img = rn.image.read(out)
      assert.same({2 * 64 + 4, 3 * 64 + 8, 3}, img:shape())
    end)
  end
end)
