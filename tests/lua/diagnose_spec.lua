-- `realnet diagnose`: its disc row is the image AUROC `realnet eval` reports, it writes diagnose.csv with a row
-- per score and a column per defect type, the kNN bank respects its bounds, and bad runs fail clearly.
local rn = require "realnet"
local json = require "realnet.json"
local rundir = require "realnet.rundir"
local diagnose = require "realnet.diagnose"
local H = require "rnhelp"

local BIN = os.getenv("REALNET_BIN") or "realnet"
local dir = H.tmpdir()
rn.demo_data.make(dir .. "/demo", {seed = 3, size = 64, train = 10, test_good = 3, test_defect = 1})

local function sh(args) return H.sh(BIN, dir, args) end
local rc0, out0 = sh("train --data demo --category demo_surface --out runs/a --epochs 1 " .. H.TINY_TRAIN)
assert(rc0 == 0, out0)

describe("realnet diagnose", function()
  it("reports disc, residual and kNN AUROCs; disc equals eval's image AUROC", function()
    local rc, out = sh("eval runs/a --no-overlays --no-maps")
    assert.are.equal(0, rc, out)
    local m = json.decode(assert(H.read(dir .. "/runs/a/metrics.json")))
    rc, out = sh("diagnose runs/a --bank-images 4 --bank-patches 100")
    assert.are.equal(0, rc, out)
    assert.matches("a bank of 4 training images, 100/64/16 feature rows per level", out, 1, true)
    local head, rows = rundir.read_csv(dir .. "/runs/a/diagnose.csv")
    assert.are.same({"category", "score", "all"}, {head[1], head[2], head[3]})
    assert.is_true(#head > 3, "a column per defect type")
    local names = {}
    for _, r in ipairs(rows) do
      names[#names + 1] = r[2]
      for i = 3, #r do
        local v = tonumber(r[i])
        assert.is_true(v ~= nil and v >= 0 and v <= 1, r[2] .. " " .. head[i])
      end
    end
    assert.are.same({"disc", "residual_1", "residual_2", "residual_3", "knn_1", "knn_2", "knn_3"}, names)
    assert.is_true(math.abs(tonumber(rows[1][3]) - m.image_auroc) < 1e-6)
    -- per defect: that defect's anomalous images against every normal one, from eval's scores.csv
    local sh_, srows = rundir.read_csv(dir .. "/runs/a/scores.csv")
    local col = {}
    for i, c in ipairs(sh_) do col[c] = i end
    for i = 4, #head do
      local s, y = {}, {}
      for _, r in ipairs(srows) do
        if r[col.label] == "0" or r[col.defect] == head[i] then
          s[#s + 1], y[#y + 1] = tonumber(r[col.score]), tonumber(r[col.label])
        end
      end
      assert.is_true(math.abs(tonumber(rows[1][i]) - rn.metrics.auroc(s, y)) < 1e-6, head[i])
    end
    assert.matches("| demo_surface | disc |", out, 1, true)
  end)

  it("is deterministic for a seed", function()
    local a = diagnose.run(dir .. "/runs/a", {bank_images = 6, bank_patches = 50, seed = 5, log = function() end})
    local b = diagnose.run(dir .. "/runs/a", {bank_images = 6, bank_patches = 50, seed = 5, log = function() end})
    assert.are.equal(a.markdown, b.markdown)
  end)

  it("refuses a PatchCore run and a directory that is not a run", function()
    local rc, out = sh("train --method patchcore --data demo --category demo_surface --out runs/pc --image-size 32 "
      .. "--backbone resnet18")
    assert.are.equal(0, rc, out)
    rc, out = sh("diagnose runs/pc")
    assert.are.equal(1, rc)
    assert.matches("patchcore model", out)
    rc, out = sh("diagnose demo")
    assert.are.equal(1, rc)
    assert.matches("demo has no readable config.lua", out, 1, true)
  end)
end)
