-- rn.patchcore: greedy coreset and k-NN building blocks (1-based indices), fit/predict on a small MVTec-layout
-- dataset written here (a bright square must score above normal images), save/load round trip, and bad input.
local rn = require "realnet"
local H = require "rnhelp"

local tmp = os.tmpname()
os.remove(tmp)

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function mkdirs(dir) os.execute("mkdir -p " .. q(dir)) end

-- A 64x64 RGB uint8 image: diagonal stripes plus noise; `square` paints a bright 12x12 block at rows/cols 31..42 / 21..32.
local function picture(seed, square)
  math.randomseed(seed)
  local rows = {}
  for y = 1, 64 do
    local r = {}
    for x = 1, 64 do
      local v = 120 + 50 * math.sin((x + y) * 0.7) + math.random(-8, 8)
      if square and y > 30 and y <= 42 and x > 20 and x <= 32 then v = 250 end
      v = math.floor(math.max(0, math.min(255, v)))
      r[x] = { v, v, v }
    end
    rows[y] = r
  end
  return rn.tensor(rows, { dtype = "uint8" })
end

local function square_mask()
  local rows = {}
  for y = 1, 64 do
    local r = {}
    for x = 1, 64 do r[x] = (y > 30 and y <= 42 and x > 20 and x <= 32) and 255 or 0 end
    rows[y] = r
  end
  return rn.tensor(rows, { dtype = "uint8" })
end

local function write_dataset(root)
  local c = root .. "/tile"
  mkdirs(c .. "/train/good"); mkdirs(c .. "/test/good"); mkdirs(c .. "/test/square"); mkdirs(c .. "/ground_truth/square")
  for i = 1, 8 do rn.image.write_png(("%s/train/good/%03d.png"):format(c, i), picture(i, false)) end
  for i = 1, 3 do
    rn.image.write_png(("%s/test/good/%03d.png"):format(c, i), picture(100 + i, false))
    rn.image.write_png(("%s/test/square/%03d.png"):format(c, i), picture(200 + i, true))
    rn.image.write_png(("%s/ground_truth/square/%03d_mask.png"):format(c, i), square_mask())
  end
end

local function fails(wants, f, ...)
  local msg = H.err(f, ...)
  assert.is_not_nil(msg, "expected an error")
  for _, w in ipairs(wants) do assert.is_truthy(msg:find(w, 1, true), ("'%s' not in: %s"):format(w, msg)) end
end

describe("rn.patchcore", function()
  setup(function() write_dataset(tmp) end)
  teardown(function() os.execute("rm -rf " .. q(tmp)) end)

  it("picks the known farthest points greedily (1-based rows)", function()
    local x = rn.tensor { { 0, 0 }, { 1, 0 }, { 0, 1 }, { 10, 0 }, { 0, -7 }, { 5, 5 }, { -3, 0 } }
    assert.are.same({ 1, 4, 6, 5, 7, 2, 3 }, H.flat(rn.patchcore.kcenter(x, 7)))
    assert.are.same({ 5, 6, 7 }, H.flat(rn.patchcore.kcenter(x, 3, 5)))
    fails({ "number of points" }, rn.patchcore.kcenter, x, 8)
  end)

  it("finds the same nearest neighbours as brute force", function()
    local qv, bank = rn.randn({ 20, 6 }, { seed = 1 }), rn.randn({ 50, 6 }, { seed = 2 })
    local d, idx = rn.patchcore.knn(qv, bank, 2)
    local Q, B, D, I = qv:totable(), bank:totable(), d:totable(), idx:totable()
    for i = 1, 20 do
      local best = {}
      for r = 1, 50 do
        local s = 0
        for j = 1, 6 do s = s + (Q[i][j] - B[r][j]) ^ 2 end
        best[#best + 1] = { math.sqrt(s), r }
      end
      table.sort(best, function(a, b) return a[1] < b[1] end)
      for k = 1, 2 do
        assert.are.equal(best[k][2], I[i][k])
        assert.is_true(math.abs(best[k][1] - D[i][k]) < 1e-5)
      end
    end
    fails({ "bank size" }, rn.patchcore.knn, qv, bank, 51)
  end)

  it("fits on a dataset, scores a bright square above normal images, and round-trips through a file", function()
    local bb = rn.backbone("resnet18", { seed = 3 })
    local pc = rn.patchcore.new { backbone = bb, layers = { 2, 3 }, coreset = 0.25, proj_dim = 32, seed = 5 }
    local train = rn.data.mvtec(tmp, "tile", { split = "train", size = 64 })
    local seen = 0
    pc:fit(train, { batch = 3, workers = 0, progress = function(n) seen = n end })
    assert.are.equal(8, seen)
    assert.are.equal(8 * 8 * 8 // 4, #pc)
    local cfg = pc:config()
    assert.are.same({ 2, 3 }, cfg.layers)
    assert.are.equal(384, cfg.feature_dim)
    assert.are.equal("resnet18", cfg.arch)
    assert.are.equal("patch_max", cfg.score)

    local test = rn.data.mvtec(tmp, "tile", { split = "test", size = 64 })
    local b
    for batch in test:batches { batch = 6, workers = 0 } do b = batch end
    local maps, scores = pc:predict(b.images)
    assert.are.same({ 6, 1, 64, 64 }, maps:shape())
    local s, labels = H.flat(scores), H.flat(b.labels)
    local max_normal, min_anom = -1, math.huge
    for i = 1, 6 do
      if labels[i] == 0 then max_normal = math.max(max_normal, s[i]) else min_anom = math.min(min_anom, s[i]) end
    end
    assert.is_true(min_anom > max_normal, ("anomalous %g vs normal %g"):format(min_anom, max_normal))

    local path = tmp .. "/pc.h5"
    pc:save(path)
    local again <close> = rn.patchcore.load(path, bb)
    assert.are.equal(0, H.maxdiff(again:bank(), pc:bank()))
    local maps2, scores2 = again:predict(b.images)
    assert.are.equal(0, H.maxdiff(maps2, maps))
    assert.are.equal(0, H.maxdiff(scores2, scores))
    assert.are.same(pc:config(), again:config())

    -- the paper's reweighting keeps the order here and never exceeds the patch maximum
    again:set_score("reweight", 3)
    local _, rs = again:predict(b.images)
    for i, v in ipairs(H.flat(rs)) do assert.is_true(v > 0 and v <= s[i]) end

    -- iterators and tensors work as training sources too
    local pc2 = rn.patchcore.new { backbone = bb, coreset = 1 }
    pc2:fit(train:batches { batch = 4, workers = 0 })
    assert.are.equal(8 * 64, #pc2)
    pc2:free()
    assert.is_truthy(tostring(pc2):find("freed"))
  end)

  it("rejects bad input with clear errors", function()
    local bb = rn.backbone("resnet18", { seed = 3 })
    local pc = rn.patchcore.new { backbone = bb }
    fails({ "empty training set" }, function() pc:fit({}) end)
    fails({ "empty training set" }, function() pc:build() end)
    fails({ "memory bank" }, function() pc:predict(rn.randn({ 1, 3, 32, 32 })) end)
    fails({ "[N,3,H,W]" }, function() pc:add(rn.randn({ 1, 1, 32, 32 })) end)
    pc:add_features(rn.randn({ 4, 384 }))
    fails({ "384" }, function() pc:add_features(rn.randn({ 4, 100 })) end)
    fails({ "coreset" }, rn.patchcore.new, { backbone = bb, coreset = 0 })
    fails({ "odd" }, rn.patchcore.new, { backbone = bb, neighbourhood = 2 })
    fails({ "no stage 'layer9'" }, rn.patchcore.new, { backbone = bb, layers = { "layer9" } })
    fails({ "out of range" }, rn.patchcore.new, { backbone = bb, layers = { 2, 7 } })
    fails({ "patch_max" }, rn.patchcore.new, { backbone = bb, score = "mean" })
    pc:build()
    local path = tmp .. "/bad.h5"
    pc:save(path)
    fails({ "built on resnet18" }, rn.patchcore.load, path, rn.backbone("mobilenetv2"))
    rn.h5.save(path, { w = rn.zeros({ 2 }) })
    fails({ "not a PatchCore model" }, rn.patchcore.load, path, bb)
    local bb2 = rn.backbone("resnet18", { seed = 4 })
    local pc3 = rn.patchcore.new { backbone = bb2 }
    bb2:free()
    fails({ "freed" }, function() pc3:add(rn.randn({ 1, 3, 32, 32 })) end)
  end)
end)
