-- rn.demo_data and `realnet make-demo-data` / `realnet bench data`: MVTec layout the reader and doctor accept,
-- byte-identical files for a seed, exact masks (where the image differs from its defect-free render), errors.
local rn = require "realnet"

local bin = os.getenv("REALNET_BIN")
local tmp = os.tmpname()
os.remove(tmp)
assert(rn.mkdir(tmp))

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function run(args)
  local cmd = q(bin) .. " " .. args .. " < /dev/null > " .. q(tmp .. "/out") .. " 2> " .. q(tmp .. "/err")
  local _, _, code = os.execute(cmd)
  return slurp(tmp .. "/out") or "", slurp(tmp .. "/err") or "", code
end

local SMALL = {size = 48, train = 3, test_good = 2, test_defect = 2, seed = 9}

local function opts(extra)
  local o = {}
  for k, v in pairs(SMALL) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local function flat(t)
  local out = {}
  local function rec(v)
    if type(v) == "table" then for _, e in ipairs(v) do rec(e) end else out[#out + 1] = v end
  end
  rec(t:totable())
  return out
end

describe("rn.demo_data.make", function()
  local dir, counts

  setup(function() dir, counts = rn.demo_data.make(tmp .. "/a", opts()) end)

  it("returns the category path and the counts", function()
    assert.equal(tmp .. "/a/demo_surface", dir)
    assert.equal(3, counts.train)
    assert.equal(2, counts.test_good)
    assert.equal(10, counts.test_defect)
    assert.equal(10, counts.masks)
    assert.same({"scratch", "spot", "crack", "missing_material", "contamination"}, counts.defects)
  end)

  it("writes the MVTec layout that rn.data.mvtec reads", function()
    for _, d in ipairs(counts.defects) do
      assert.equal("file", rn.file_type(dir .. "/test/" .. d .. "/001.png"))
      assert.equal("file", rn.file_type(dir .. "/ground_truth/" .. d .. "/001_mask.png"))
    end
    local train = rn.data.mvtec(tmp .. "/a", "demo_surface", {split = "train", size = 48})
    assert.equal(3, #train)
    local test = rn.data.mvtec(tmp .. "/a", "demo_surface", {split = "test", size = 48})
    assert.equal(12, #test)
    local anomalous, good = 0, 0
    for i = 1, #test do
      local item = test:get(i)
      local m = item.mask:sum():item()
      if item.label == 1 then
        anomalous = anomalous + 1
        assert.is_true(m > 0, "defect mask is empty: " .. item.path)
      else
        good = good + 1
        assert.equal(0, m)
      end
    end
    assert.equal(10, anomalous)
    assert.equal(2, good)
  end)

  it("gives byte-identical files for the same seed and different ones for another", function()
    rn.demo_data.make(tmp .. "/b", opts{threads = 1})
    rn.demo_data.make(tmp .. "/c", opts{seed = 10})
    for _, f in ipairs{"train/good/002.png", "test/good/000.png", "test/crack/001.png",
                       "ground_truth/spot/000_mask.png", "test/missing_material/000.png"} do
      local a = slurp(tmp .. "/a/demo_surface/" .. f)
      assert.is_truthy(a)
      assert.equal(a, slurp(tmp .. "/b/demo_surface/" .. f))
      assert.are_not.equal(a, slurp(tmp .. "/c/demo_surface/" .. f))
    end
  end)

  it("refuses a non-empty category unless overwrite is set", function()
    local ok, err = pcall(rn.demo_data.make, tmp .. "/a", opts())
    assert.is_false(ok)
    assert.matches("not empty", err)
    local d2 = rn.demo_data.make(tmp .. "/a", opts{overwrite = true, category = "demo_surface"})
    assert.equal(dir, d2)
  end)

  it("rejects bad options with clear errors", function()
    local function err(o, out)
      local ok, msg = pcall(rn.demo_data.make, out or (tmp .. "/bad"), o)
      assert.is_false(ok)
      return msg
    end
    assert.matches("train count %-1", err(opts{train = -1}))
    assert.matches("test_defect count", err(opts{test_defect = -2}))
    assert.matches("size 16 is out of range", err(opts{size = 16}))
    assert.matches("unknown texture 'wood'", err(opts{texture = "wood"}))
    assert.matches("opts.seed", err(opts{seed = -1}))
    local f = io.open(tmp .. "/afile", "w")
    f:write("x")
    f:close()
    assert.matches("cannot create directory .*afile", err(opts(), tmp .. "/afile/sub"))
  end)
end)

describe("rn.demo_data.render", function()
  it("marks exactly the pixels that differ from the defect-free render", function()
    for _, tex in ipairs(rn.demo_data.textures) do
      for _, kind in ipairs{"good", "scratch", "spot", "crack", "missing_material", "contamination"} do
        local img, clean, mask = rn.demo_data.render({size = 32, seed = 3, texture = tex}, "test", kind, 2)
        assert.same({32, 32, 3}, img:shape())
        local a, b, m = flat(img), flat(clean), flat(mask)
        local on, margin = 0, 3
        for i = 1, 32 * 32 do
          local diff = a[3 * i - 2] ~= b[3 * i - 2] or a[3 * i - 1] ~= b[3 * i - 1] or a[3 * i] ~= b[3 * i]
          assert.equal(diff and 255 or 0, m[i])
          if m[i] > 0 then
            on = on + 1
            local y, x = (i - 1) // 32, (i - 1) % 32
            assert.is_true(x >= margin and y >= margin and x < 32 - margin and y < 32 - margin)
          end
        end
        if kind == "good" then assert.equal(0, on) else assert.is_true(on > 0) end
      end
    end
  end)

  it("matches the file make writes (index 1 is 000.png)", function()
    rn.demo_data.make(tmp .. "/r", {size = 32, train = 0, test_good = 0, test_defect = 1, seed = 4})
    local img = rn.demo_data.render({size = 32, seed = 4}, "test", "scratch", 1)
    local file = rn.image.read(tmp .. "/r/demo_surface/test/scratch/000.png")
    assert.same(flat(img), flat(file))
  end)

  it("rejects unknown kinds and defects in the train split", function()
    assert.matches("unknown kind", select(2, pcall(rn.demo_data.render, {size = 32}, "test", "dent", 1)))
    assert.matches("train split", select(2, pcall(rn.demo_data.render, {size = 32}, "train", "spot", 1)))
    assert.matches("index", select(2, pcall(rn.demo_data.render, {size = 32}, "test", "spot", 0)))
  end)
end)

describe("realnet make-demo-data and bench data", function()
  if not bin then
    pending("REALNET_BIN is not set")
    return
  end

  it("writes a set that doctor finds clean", function()
    local out, err, code = run("make-demo-data " .. q(tmp .. "/cli") ..
                               " --size 48 --train 4 --test-good 2 --test-defect 1 --seed 2")
    assert.equal(0, code, err)
    assert.matches("4 train, 2 test good, 5 test defect", out)
    out, err, code = run("doctor " .. q(tmp .. "/cli/demo_surface"))
    assert.equal(0, code, out .. err)
    assert.matches("no problems", out)
  end)

  it("exits non-zero with a clear message on bad input", function()
    local _, err, code = run("make-demo-data " .. q(tmp .. "/cli2") .. " --size 8")
    assert.equal(1, code)
    assert.matches("size 8 is out of range", err)
    _, err, code = run("make-demo-data " .. q(tmp .. "/cli2") .. " --train -4")
    assert.equal(2, code)
    assert.matches("must not be negative", err)
    _, err, code = run("make-demo-data")
    assert.equal(2, code)
    assert.matches("no output directory", err)
  end)

  it("bench data reports img/s with the worker count", function()
    local out, err, code = run("bench data --size 32 --batch 4 --seconds 0 --source cutpaste --workers 1")
    assert.equal(0, code, err)
    assert.matches("batch 4, workers 1", out)
    assert.matches("load%s+[%d.]+ img/s", out)
    assert.matches("synth%s+[%d.]+ img/s", out)
    assert.matches("load%+synth%s+[%d.]+ img/s", out)
  end)
end)

teardown(function() os.execute("rm -rf " .. q(tmp)) end)
