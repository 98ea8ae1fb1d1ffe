-- The RealNet model: RRS against a Lua reference, AFS on a case with known anomalous channels, RDR / RLPR,
-- zero reconstructions at init for architectures A / B / C, training steps, save/load round trips and bad input.
-- Tiny configs (random ResNet-18 stages 1-3 at 64x64) keep it fast.
local rn = require "realnet"
local H = require "rnhelp"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

-- One random backbone for every model (its first forward is the slow part of building one).
local shared_bb = rn.backbone("resnet18", {layers = {1, 2, 3}, seed = 1})

local function tiny(over)
  local cfg = {preset = "cpu", image_size = 64, seed = 5, backbone = shared_bb,
               afs = {method = "rdr", dims = {16, 32, 32}, batches = 2, batch = 2}, disc = {hidden = 16, mid = {8, 8}}}
  for k, v in pairs(over or {}) do
    if type(v) == "table" and type(cfg[k]) == "table" and k ~= "backbone" then
      for k2, v2 in pairs(v) do cfg[k][k2] = v2 end
    else
      cfg[k] = v
    end
  end
  return rn.realnet.new(cfg)
end

-- Smooth images, square masks and A = I with the masked area brightened.
local function triplet(n, seed)
  local I = rn.upsample(rn.randn({n, 3, 8, 8}, {seed = seed}), {size = {64, 64}, mode = "bilinear"})
  local m = {}
  for b = 1, n do
    local rows = {}
    local y0, x0 = 8 + 9 * ((b + seed) % 4), 6 + 11 * ((b * 3 + seed) % 4)
    for y = 1, 64 do
      local row = {}
      for x = 1, 64 do row[x] = (y > y0 and y <= y0 + 14 and x > x0 and x <= x0 + 12) and 1 or 0 end
      rows[y] = row
    end
    m[b] = {rows}
  end
  local M = rn.tensor(m)
  local A = I + M * 3
  return A, I, M
end

local fake_synth = {seed = 10}
function fake_synth:batch(_, n)
  self.seed = self.seed + 1
  return triplet(n, self.seed)
end

describe("rn.rrs", function()
  -- The reference materialises Z = BN(R) and ranks its GMP / GAP with rn.topk (a different path from the C op).
  local function reference(R, mean, var, km, ka)
    local C = R:size(2)
    local Z = (R - mean:reshape({1, C, 1, 1})) / (var:reshape({1, C, 1, 1}) + 1e-5):sqrt()
    local parts = {}
    if km > 0 then local _, i = rn.topk(Z:max({3, 4}), km, 2); parts[#parts + 1] = i end
    if ka > 0 then local _, i = rn.topk(Z:mean({3, 4}), ka, 2); parts[#parts + 1] = i end
    return #parts == 1 and parts[1] or rn.cat(parts, 2)
  end

  local function residual(seed)
    local R = rn.randn({3, 12, 5, 5}, {seed = seed}):square()
    return R * rn.arange(1, 13):float():reshape({1, 12, 1, 1}) -- channel scales differ
  end

  for _, mode in ipairs {"maxavg", "max", "avg"} do
    it("selects like the Lua reference in mode " .. mode .. " (training and eval)", function()
      local sel = rn.rrs.new {mode = mode, ratio = 1 / 3, channels = 12}
      local km, ka = sel:counts()
      assert.are.equal(4, km + ka)
      local R = residual(3)
      local mean = R:mean({1, 3, 4})
      local var = (R - mean:reshape({1, 12, 1, 1})):square():mean({1, 3, 4})
      local S, idx = sel:forward(R, {training = true})
      local want = reference(R, mean, var, km, ka)
      assert.are.same(want:totable(), idx:totable())
      -- values: S[b, j] = R[b, idx[b, j]]
      for b = 1, 3 do
        for j = 1, 4 do
          local i = idx:get(b, j)
          assert.are.equal(0, H.maxdiff(S:select(1, b):select(1, j), R:select(1, b):select(1, i)))
        end
      end
      -- running statistics: 0.1 * initial + 0.9 * batch (unbiased variance)
      local n = 3 * 25
      assert.is_true(H.maxdiff(sel:running_mean(), mean * 0.9) < 1e-5)
      assert.is_true(H.maxdiff(sel:running_var(), var * (0.9 * n / (n - 1)) + 0.1) < 1e-3)
      -- eval ranks with the running statistics and leaves them alone
      local R2 = residual(4)
      local before = sel:running_mean():clone()
      local _, idx2 = sel:forward(R2, {training = false})
      assert.are.same(reference(R2, sel:running_mean(), sel:running_var(), km, ka):totable(), idx2:totable())
      assert.are.equal(0, H.maxdiff(before, sel:running_mean()))
    end)
  end

  it("takes explicit counts, switches off, and passes gradients through the gather", function()
    local sel = rn.rrs.new {counts = {max = 2, avg = 3}}
    local R = residual(5):requires_grad(true)
    local S, idx = sel:forward(R)
    assert.are.same({3, 5, 5, 5}, S:shape())
    assert.are.same({3, 5}, idx:shape())
    S:sum():backward()
    assert.are.equal(3 * 5 * 25, R:grad():sum():item()) -- every gathered value once (twice where sets overlap)
    local S1, none = sel:forward(R, {training = false, indices = false}) -- S alone (no host-side index copy)
    assert.is_nil(none)
    assert.are.equal(0, H.maxdiff(S1, (sel:forward(R, {training = false}))))
    local off = rn.rrs.new {enabled = false}
    local S2, i2 = off:forward(R)
    assert.are.same(R:shape(), S2:shape())
    assert.is_nil(i2)
    assert.matches("off", tostring(off))
  end)

  it("rejects bad options and inputs with clear messages", function()
    assert.matches("unknown mode 'median'", H.err(rn.rrs.new, {mode = "median"}))
    assert.matches("ratio must be in", H.err(rn.rrs.new, {ratio = 2}))
    assert.matches("counts", H.err(rn.rrs.new, {counts = {max = 0, avg = 0}}))
    local sel = rn.rrs.new {channels = 6}
    assert.matches("built for 6", H.err(sel.forward, sel, rn.rand({2, 5, 3, 3})))
    assert.matches("%[B,C,H,W%]", H.err(sel.forward, sel, rn.rand({2, 6, 3})))
  end)
end)

describe("AFS", function()
  local afs = require "realnet.realnet.afs"

  it("selects the channels that respond to the anomaly mask", function()
    -- "images" are 8-channel features; channels 2, 5 and 7 (1-based) light up exactly under the mask, the others
    -- carry mask-independent noise, so the AFS loss ranks the three informative channels first.
    local responsive = {[2] = true, [5] = true, [7] = true}
    local synth = {n = 0}
    function synth:batch(_, n)
      self.n = self.n + 1
      local I = rn.randn({n, 8, 6, 6}, {seed = 100 + self.n})
      local M = rn.rand({n, 1, 6, 6}, {seed = 200 + self.n}):gt(0.7)
      local noise = rn.randn({n, 8, 6, 6}, {seed = 300 + self.n})
      local gate = {}
      for c = 1, 8 do gate[c] = responsive[c] and 1 or 0 end
      local g = rn.tensor(gate):reshape({1, 8, 1, 1})
      local A = I + M * g * 2 + noise * (1 - g)
      return A, I, M
    end
    local a = afs.AFS({8}, {3}, {method = "afs", eps = 1e-4})
    assert.is_false(a:is_selected())
    local losses = a:select(function(x) return {x} end, synth, nil, {batches = 4, batch = 6})
    assert.are.same({1, 4, 6}, a.index1:totable()) -- 0-based ids in the state
    assert.is_true(a:is_selected())
    assert.are.equal(8, #losses[1])
    local out = a({rn.arange(0, 8):float():reshape({1, 8, 1, 1})})
    assert.are.same({1, 4, 6}, H.flat(out[1]))
  end)

  it("ranks NaN losses last and keeps ascending ids", function()
    assert.are.same({0, 3}, afs.smallest({0.1, 0 / 0, 0.5, 0.05}, 2))
  end)

  it("picks seeded random channels (RDR) and a stored random projection (RLPR)", function()
    local a = afs.AFS({10, 4}, {3, 4}, {method = "rdr", seed = 7})
    local b = afs.AFS({10, 4}, {3, 4}, {method = "rdr", seed = 7})
    local c = afs.AFS({10, 4}, {3, 4}, {method = "rdr", seed = 8})
    assert.are.same(a.index1:totable(), b.index1:totable())
    assert.are_not.same(a.index1:totable(), c.index1:totable())
    local ids = a.index1:totable()
    assert.is_true(ids[1] < ids[2] and ids[2] < ids[3] and ids[1] >= 0 and ids[3] < 10)
    assert.is_true(a:is_selected())
    local p = afs.AFS({10, 4}, {3, 4}, {method = "rlpr", seed = 7})
    assert.are.same({3, 10, 1, 1}, p.proj1:shape())
    assert.is_nil(p.proj2) -- a level that keeps every channel is not projected
    local out = p({rn.randn({2, 10, 5, 5}), rn.randn({2, 4, 5, 5})})
    assert.are.same({2, 3, 5, 5}, out[1]:shape())
    assert.are.same({2, 4, 5, 5}, out[2]:shape())
  end)

  it("gives the same features from frozen (validated) channel indices", function()
    local a = afs.AFS({10, 4}, {3, 4}, {method = "rdr", seed = 7})
    local feats = {rn.randn({2, 10, 5, 5}, {seed = 1}), rn.randn({2, 4, 5, 5}, {seed = 2})}
    local ref = a(feats)
    a.frozen = a:freeze()
    assert.is_nil(a.frozen[2]) -- a level that keeps every channel needs no index
    local out = a(feats)
    a.frozen = nil
    assert.are.equal(0, H.maxdiff(ref[1], out[1]))
    assert.are.same(ref[2]:shape(), out[2]:shape())
    -- the index checks ids once, when made, and inputs against its channel count on every use
    assert.matches("out of range 1..10", H.err(rn.core.channel_index, rn.tensor({1, 11}, {dtype = "int64"}), 10))
    assert.matches("1%-d", H.err(rn.core.channel_index, rn.zeros({2, 2}):long(), 10))
    local ci = rn.core.channel_index(rn.tensor({2, 5}, {dtype = "int64"}), 10)
    assert.matches("ChannelIndex%(2 of 10, cpu%)", tostring(ci))
    assert.are.same({1, 4}, H.flat(rn.core.select_channels(rn.arange(0, 10):reshape({1, 10}), ci))) -- ids 2, 5
    assert.matches("10 channels", H.err(rn.core.select_channels, rn.zeros({1, 9, 2, 2}), ci))
  end)

  it("runs on the model through select_features", function()
    local m = tiny {afs = {method = "afs"}}
    local x = triplet(2, 1)
    assert.matches("select_features", H.err(m.train_step, m, x, x, rn.zeros({2, 1, 64, 64}), nil))
    m:select_features(fake_synth, {}, {batches = 2, batch = 2})
    assert.is_true(m.afs:is_selected())
    for l, k in ipairs {16, 32, 32} do
      local ids = m.afs["index" .. l]:totable()
      assert.are.equal(k, #ids)
      for i = 2, k do assert.is_true(ids[i] > ids[i - 1]) end
    end
  end)
end)

describe("rn.realnet model", function()
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)
  local x = triplet(2, 3)

  for _, arch in ipairs {"A", "B", "C"} do
    it("architecture " .. arch .. " reconstructs exactly 0 at init, with the block shapes", function()
      local m = tiny {recon = {arch = arch}}
      local blocks = m:block_features(x)
      local want = ({A = {{16, 16}, {32, 8}, {32, 4}}, B = {{80, 16}}, C = {{48, 16}, {32, 4}}})[arch]
      assert.are.equal(#want, #blocks)
      for b, t in ipairs(blocks) do
        assert.are.same({2, want[b][1], want[b][2], want[b][2]}, t:shape())
        local r = m.recon:get(b)(t)
        assert.are.same(t:shape(), r:shape())
        assert.are.equal(0, r:abs():max():item())
      end
      local maps, scores = m:forward(x)
      assert.are.same({2, 1, 64, 64}, maps:shape())
      assert.are.same({2}, scores:shape())
      assert.is_true(maps:min():item() >= 0 and maps:max():item() <= 1)
    end)
  end

  it("has presets with the documented defaults", function()
    local p = rn.realnet.defaults("paper")
    assert.are.same({256, 512, 512, 256}, p.afs.dims)
    assert.are.same({1, 2, 4}, p.recon.channel_mult)
    assert.are.same({2, 4}, p.recon.attention)
    assert.are.equal(0.5, p.recon.ratio)
    assert.are.equal("wide_resnet50_2", p.backbone.arch)
    assert.are.equal(16, rn.realnet.config.score_pool(p))
    local c = rn.realnet.defaults("cpu")
    assert.are.equal(8, rn.realnet.config.score_pool(c))
    assert.matches("recon.arch must be one of", H.err(rn.realnet.new, {recon = {arch = "D"}}))
    assert.are.same({3}, c.backbone.layers)
    assert.are.same({384}, c.afs.dims)
    assert.are.equal(0.9, c.train.average)
    assert.are.equal(0, p.train.average)
    assert.matches("afs.dims has 3 entries", H.err(rn.realnet.new, {afs = {dims = {1, 2, 3}}}))
  end)

  it("decreases the loss over a few training steps", function()
    local m = tiny()
    local opt = rn.optim.adam(m:parameters(), {lr = 1e-3})
    local A, I, M = triplet(4, 7)
    local first, last
    for i = 1, 6 do
      local r = m:train_step(A, I, M, opt)
      assert.is_true(r.finite)
      local w = m.cfg.loss -- the preset's weights
      assert.is_true(math.abs(r.loss - (w.seg_weight * r.seg + w.mse_weight * r.mse)) < 1e-3 * r.loss)
      if i == 1 then first = r end
      last = r
    end
    assert.is_true(last.loss < first.loss, ("loss %g -> %g"):format(first.loss, last.loss))
    assert.is_true(last.seg < first.seg, ("seg %g -> %g"):format(first.seg, last.seg))
    -- without an optimiser: losses only, nothing changes
    local p = m:parameters()[1]:clone()
    m:train_step(A, I, M)
    assert.are.equal(0, H.maxdiff(p, m:parameters()[1]))
  end)

  it("reuses A's features for normal samples of a mixed batch", function()
    local m = tiny()
    local A, I = triplet(3, 9)
    local mixed = rn.cat({A:narrow(1, 1, 1), I:narrow(1, 2, 2)}, 1)
    local fa, fn = m:extract_pair(mixed, I)
    local ref = m:extract(I)
    for l = 1, 3 do assert.is_true(H.maxdiff(fn[l], ref[l]) < 1e-4) end
    assert.is_true(H.maxdiff(fa[1]:narrow(1, 1, 1), m:extract(A:narrow(1, 1, 1))[1]) < 1e-4)
  end)

  it("round-trips through a model file with identical outputs", function()
    local m = tiny {afs = {method = "rlpr"}, rrs = {mode = "max", ratio = 0.25}, loss = {seg = "focal"}}
    local opt = rn.optim.adam(m:parameters(), {lr = 1e-3})
    local A, I, M = triplet(2, 11)
    m:train_step(A, I, M, opt) -- moves BN and RRS running statistics off their initial values
    local maps, scores = m:forward(x)
    local path = dir .. "/model.h5"
    rn.realnet.save(path, m, {epoch = 1, note = "spec"})
    local m2, attrs = rn.realnet.load(path)
    assert.are.equal(1, attrs.epoch)
    assert.are.equal("realnet", attrs.method)
    local maps2, scores2 = m2:forward(x)
    assert.are.equal(0, H.maxdiff(maps, maps2))
    assert.are.equal(0, H.maxdiff(scores, scores2))
    assert.are.equal(0, H.maxdiff(m.rrs.running_var, m2.rrs.running_var))
    assert.are.equal("focal", m2.cfg.loss.seg)
    -- and in memory, into a model with other random weights
    local m3 = tiny {seed = 99, afs = {method = "rlpr"}, rrs = {mode = "max", ratio = 0.25}}
    assert.is_true(H.maxdiff(m3:forward(x), maps) > 0)
    m3:load_state(m:state())
    assert.are.equal(0, H.maxdiff(m3:forward(x), maps))
  end)

  it("rejects images with the wrong channel count or size", function()
    local m = tiny()
    assert.matches("3%-channel", H.err(m.forward, m, rn.rand({2, 1, 64, 64})))
    assert.matches("built for 64x64", H.err(m.forward, m, rn.rand({2, 3, 32, 32})))
    assert.matches("float32 %[B,3,H,W%]", H.err(m.forward, m, rn.rand({3, 64, 64})))
    local A, I = triplet(2, 1)
    assert.matches("M must be a %[2,1,64,64%]", H.err(m.train_step, m, A, I, rn.zeros({2, 64, 64})))
    assert.matches("not divisible", H.err(rn.realnet.new, {image_size = 72, backbone = {arch = "resnet18",
      layers = {1, 2, 3}}, afs = {dims = {8, 16, 16}}, recon = {channel_mult = {1, 2, 4}}}))
  end)

  it("refuses states and files of another architecture", function()
    local a = tiny()
    local b = tiny {recon = {arch = "B"}}
    local msg = H.err(b.load_state, b, a:state())
    assert.matches("another architecture", msg)
    assert.matches("recon.arch: \"B\" vs \"A\"", msg)
    -- a plain tensor table with the wrong shapes is listed by name
    assert.matches("mis%-shaped", H.err(b.load_state, b, a:state().tensors))
    local plain = dir .. "/plain.h5"
    rn.save(plain, {w = rn.zeros({2})})
    assert.matches("not a RealNet model", H.err(rn.realnet.load, plain))
    local other = dir .. "/other.h5"
    rn.state.save(other, {w = rn.zeros({2})}, {attrs = {method = "patchcore"}})
    assert.matches("'patchcore' model", H.err(rn.realnet.load, other))
    assert.matches("cannot open", H.err(rn.realnet.load, dir .. "/missing.h5"))
  end)
end)
