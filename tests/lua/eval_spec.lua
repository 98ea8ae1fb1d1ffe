-- `realnet eval`: every output file of the run directory with the right layout and sizes, metrics that agree
-- with rn.metrics on scores.csv, protocol flags, --select best_on_test, AUROC below 0.5 reported as is, a
-- multi-category run, and errors. One tiny RealNet (32x32 input on 64x64 images) is trained once.
local rn = require "realnet"
local json = require "realnet.json"
local rundir = require "realnet.rundir"
local evaluator = require "realnet.evaluator"
local predictor = require "realnet.predictor"
local H = require "rnhelp"

local BIN = os.getenv("REALNET_BIN") or "realnet"
local dir = H.tmpdir()
local DATA = dir .. "/demo"
rn.demo_data.make(DATA, {seed = 1, size = 64, train = 10, test_good = 2, test_defect = 1})
rn.demo_data.make(DATA, {seed = 2, size = 48, train = 6, test_good = 2, test_defect = 1, category = "demo_b",
                         texture = "fabric"})

local TINY = H.TINY_TRAIN .. " --trainer.checkpoint_every=1"

local function sh(args) return H.sh(BIN, dir, args) end
local function read(path) return assert(H.read(path)) end

local RUN = dir .. "/runs/a"
local rc0, out0 = sh("train --data demo --category demo_surface --out runs/a --epochs 2 " .. TINY)
assert(rc0 == 0, out0)

describe("realnet eval", function()
  it("writes metrics.json, metrics.csv, scores.csv, TIFF maps at the original size and overlays", function()
    local rc, out = sh("eval runs/a")
    assert.are.equal(0, rc, out)
    assert.matches("img AUROC", out)
    local m = json.decode(read(RUN .. "/metrics.json"))
    for _, k in ipairs{"image_auroc", "pixel_auroc", "aupro", "pro_realnet", "f1_max"} do
      assert.is_number(m[k], k)
      assert.is_true(m[k] >= 0 and m[k] <= 1, k)
    end
    local p = m.protocol
    assert.are.equal("last_epoch", p.selection)
    assert.are.equal(2, p.epoch)
    assert.matches("^mvtec: 8%-connected", p.pro_definition)
    assert.are.equal(0.3, p.aupro_limit)
    assert.are.equal(32, p.image_size)
    assert.are.equal(100, p.seed)
    assert.matches("holdout", p.threshold_source)
    assert.is_false(p.unified)
    -- metrics.csv: one row for the category
    local head, rows = rundir.read_csv(RUN .. "/metrics.csv")
    assert.are.equal("category", head[1])
    assert.are.equal(1, #rows)
    assert.are.equal("demo_surface", rows[1][1])
    -- scores.csv: one row per test image (2 good + 5 defect kinds); its scores give the reported AUROC
    local sh_, srows = rundir.read_csv(RUN .. "/scores.csv")
    assert.are.same({"category", "path", "defect", "label", "score", "predicted", "map"}, sh_)
    assert.are.equal(7, #srows)
    local scores, labels = {}, {}
    for i, r in ipairs(srows) do scores[i] = tonumber(r[5]); labels[i] = tonumber(r[4]) end
    assert.is_true(math.abs(rn.metrics.auroc(scores, labels) - m.image_auroc) < 1e-6)
    -- TIFF maps: float32 at each image's original 64x64 size, in the MVTec evaluator layout
    for _, r in ipairs(srows) do
      local id = r[2]:match("([^/]+)%.png$")
      local rel = ("anomaly_maps/demo_surface/test/%s/%s.tiff"):format(r[3], id)
      assert.are.equal(rel, r[7])
      local t = assert(rn.image.read_tiff(RUN .. "/" .. rel))
      assert.are.same({64, 64}, t:shape())
      assert.are.equal("float32", t:dtype())
      assert.is_true(t:min():item() >= 0 and t:max():item() <= 1)
      -- overlay: four panels at the model's input size
      local png = assert(rn.image.read(("%s/images/demo_surface/%s_%s.png"):format(RUN, r[3], id)))
      assert.are.equal(32, png:size(1))
      assert.is_true(png:size(2) >= 4 * 32)
    end
  end)

  it("records --select best_on_test in metrics.json and shows a banner", function()
    local rc, out = sh("eval runs/a --select best_on_test --no-overlays --no-maps")
    assert.are.equal(0, rc, out)
    assert.matches("PROTOCOL: best_on_test", out)
    assert.matches("epoch%s+1: image AUROC", out)
    local m = json.decode(read(RUN .. "/metrics.json"))
    assert.are.equal("best_on_test", m.protocol.selection)
    assert.are.equal(2, #m.selection_trace)
    local t = m.selection_trace
    local best = (t[2].key >= t[1].key) and 2 or 1 -- ties go to the later epoch
    assert.are.equal(t[best].epoch, m.protocol.epoch)
    local _, rows = rundir.read_csv(RUN .. "/metrics.csv")
    assert.are.equal("best_on_test", rows[1][11])
  end)

  it("reports AUROC below 0.5 as it is, with a warning", function()
    local normal = evaluator.run(RUN, {overlays = false, maps = false})
    local p = predictor.open(RUN)
    local P = getmetatable(p).__index
    local orig = P.predict_batch
    P.predict_batch = function(self, x) -- inverted scores
      local maps, scores = orig(self, x)
      return 1 - maps, -scores
    end
    local ok, inv = pcall(evaluator.run, RUN, {overlays = false, maps = false})
    P.predict_batch = orig
    assert.is_true(ok, inv)
    assert.is_true(math.abs(inv.image_auroc - (1 - normal.image_auroc)) < 1e-9)
    assert.is_true(math.abs(inv.pixel_auroc - (1 - normal.pixel_auroc)) < 1e-3) -- 1 - map rounds in float32
    local low = inv.image_auroc < 0.5 and inv.image_auroc or normal.image_auroc
    local warns = inv.image_auroc < 0.5 and inv.warnings or normal.warnings
    if low < 0.5 then
      assert.is_true(#warns >= 1)
      assert.matches("below 0.5 %(reported as is, not flipped%)", warns[1])
    end
  end)

  it("evaluates one model per category with a mean row, for PatchCore as for RealNet", function()
    local rc, out = sh("train --method patchcore --data demo --category all --out runs/pc --image-size 32 "
      .. "--backbone resnet18")
    assert.are.equal(0, rc, out)
    rc, out = sh("eval runs/pc --no-overlays")
    assert.are.equal(0, rc, out)
    local _, rows = rundir.read_csv(dir .. "/runs/pc/metrics.csv")
    assert.are.equal(3, #rows)
    assert.are.equal("demo_b", rows[1][1])
    assert.are.equal("demo_surface", rows[2][1])
    assert.are.equal("mean", rows[3][1])
    local m = json.decode(read(dir .. "/runs/pc/metrics.json"))
    assert.are.equal("patchcore", m.method)
    assert.is_true(math.abs(m.image_auroc - (m.categories.demo_b.image_auroc + m.categories.demo_surface.image_auroc) / 2)
      < 1e-12)
    -- demo_b images are 48x48: maps come back at that size
    local t = assert(rn.image.read_tiff(dir .. "/runs/pc/anomaly_maps/demo_b/test/good/000.tiff"))
    assert.are.same({48, 48}, t:shape())
  end)

  it("fails clearly on a directory that is not a run, and on missing data", function()
    local rc, out = sh("eval demo")
    assert.are.equal(1, rc)
    assert.matches("config.lua", out)
    rc, out = sh("eval runs/a --data nowhere --no-overlays --no-maps")
    assert.are.equal(1, rc)
    assert.matches("nowhere", out)
    rc, out = sh("eval")
    assert.are.equal(2, rc)
    assert.matches("no run directory given", out)
  end)
end)
