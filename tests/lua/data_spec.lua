-- rn.data: readers for every layout on small datasets written here, items and batches (1-based indices, Lua
-- strings), deterministic shuffling across worker counts, early stop of the batch iterator (break and <close>),
-- bad input with clear errors, and the real magnetic_tile data when REALNET_SHARED has it.
local rn = require "realnet"
local H = require "rnhelp"

local tmp = os.tmpname()
os.remove(tmp)

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function mkdirs(dir) os.execute("mkdir -p " .. q(dir)) end
local function dirname(p) return p:match("^(.*)/[^/]*$") end

local function image(path, h, w, c, seed)
  mkdirs(dirname(path))
  local t = rn.rand({h, w, c}, {seed = seed}):mul(255):to("uint8")
  rn.image.write_png(path, t)
end

local function mask(path, h, w, rows)
  mkdirs(dirname(path))
  local rowsv = {}
  for y = 1, h do
    local r = {}
    for x = 1, w do r[x] = y <= rows and 255 or 0 end
    rowsv[y] = r
  end
  rn.image.write_png(path, rn.tensor(rowsv, {dtype = "uint8"}))
end

local function text(path, s)
  mkdirs(dirname(path))
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- <root>/<cat>: train/good (ntrain), test/good (1), test/crack (2, masked)
local function mvtec(root, cat, ntrain)
  local c = root .. "/" .. cat
  for i = 1, ntrain do image(("%s/train/good/%03d.png"):format(c, i - 1), 10 + i % 3, 12, i % 2 == 0 and 1 or 3, i) end
  image(c .. "/test/good/000.png", 12, 12, 3, 50)
  image(c .. "/test/crack/000.png", 12, 12, 3, 51)
  image(c .. "/test/crack/001.png", 12, 12, 1, 52)
  mask(c .. "/ground_truth/crack/000_mask.png", 12, 12, 6)
  mask(c .. "/ground_truth/crack/001_mask.png", 12, 12, 3)
end

-- Message of f(...) that must fail and mention every pattern.
local function fails(wants, f, ...)
  local msg = H.err(f, ...)
  assert.is_not_nil(msg, "expected an error mentioning " .. table.concat(wants, ", "))
  for _, want in ipairs(wants) do assert.matches(want, msg, 1, true) end
end

describe("rn.data", function()
  setup(function() mvtec(tmp, "widget", 11) end)
  teardown(function() os.execute("rm -rf " .. q(tmp)) end)

  it("reads the MVTec layout into items", function()
    local ds <close> = rn.data.mvtec(tmp, "widget", {split = "test", size = 8})
    assert.are.equal(3, #ds)
    assert.matches("dataset%(mvtec widget test, 3 images, 8x8%)", tostring(ds))
    local it = ds:get(2)
    assert.are.same({3, 8, 8}, it.image:shape())
    assert.are.same({1, 8, 8}, it.mask:shape())
    assert.are.equal(1, it.label)
    assert.are.equal("crack", it.defect)
    assert.are.equal(2, it.index)
    assert.matches("widget/test/crack/001%.png$", it.path)
    assert.matches("ground_truth/crack/001_mask%.png$", it.mask_path)
    assert.are.equal(16, it.mask:sum():item()) -- 3 of 12 rows, nearest to 8: 2 rows of 8
    local good = ds:get(-1)
    assert.are.equal("good", good.defect)
    assert.are.equal(0, good.mask:sum():item())
    assert.is_nil(good.mask_path)
    assert.are.equal("test", ds:entry(1).split)
    local info = ds:info()
    assert.are.same({8, 8}, info.size)
    assert.are.equal("mvtec", info.kind)
    -- [0,1] instead of ImageNet statistics
    local unit = rn.data.mvtec(tmp .. "/widget", {split = "test", size = 8, normalize = false})
    local x = unit:get(1).image
    assert.is_true(x:min():item() >= 0 and x:max():item() <= 1)
    local u8 = unit:image_u8(1) -- the uint8 stage synthesis works on
    assert.are.same({8, 8, 3}, u8:shape())
    assert.are.equal("uint8", u8:dtype())
    assert.is_true(H.maxdiff(rn.image.to_float(u8), x) < 1e-6)
    unit:free()
    assert.matches("freed", tostring(unit))
  end)

  it("batches with workers, the same order for any worker count", function()
    local ds = rn.data.mvtec(tmp, "widget", {size = 8})
    local function pass(workers)
      local order, sum = {}, 0
      for b in ds:batches{batch = 4, shuffle = true, seed = 3, workers = workers} do
        assert.are.same({b.size, 3, 8, 8}, b.images:shape())
        assert.are.same({b.size, 1, 8, 8}, b.masks:shape())
        assert.are.equal("int64", b.labels:dtype())
        assert.are.equal(b.size, #b.paths)
        for i = 1, b.size do
          order[#order + 1] = b.indices[i]
          assert.are.equal(ds:entry(b.indices[i]).path, b.paths[i])
          assert.are.equal("good", b.defects[i])
        end
        sum = sum + b.images:sum():item()
      end
      return order, sum
    end
    local o0, s0 = pass(0)
    local o1, s1 = pass(1)
    local o3, s3 = pass(3)
    assert.are.same(o0, o1)
    assert.are.same(o0, o3)
    assert.are.equal(s0, s1)
    assert.are.equal(s0, s3)
    assert.are.equal(11, #o0)
    local sorted = {table.unpack(o0)}
    table.sort(sorted)
    for i = 1, 11 do assert.are.equal(i, sorted[i]) end
    assert.are_not.same(sorted, o0)
    -- another epoch, another order; drop_last; sequential order without shuffle
    local e1 = {}
    for b in ds:batches{batch = 4, shuffle = true, seed = 3, epoch = 1} do
      for i = 1, b.size do e1[#e1 + 1] = b.indices[i] end
    end
    assert.are_not.same(o0, e1)
    local n = 0
    for b in ds:batches{batch = 4, drop_last = true} do n = n + 1; assert.are.equal(4, b.size) end
    assert.are.equal(2, n)
    local next_batch, loader = ds:batches{batch = 5}
    assert.are.equal(1, next_batch(loader).indices[1])
    loader:free()
  end)

  it("stops the workers when a loop breaks early or a loader is closed", function()
    local ds = rn.data.mvtec(tmp, "widget", {size = 8})
    local t0 = rn.now()
    for _ = 1, 10 do
      for b in ds:batches{batch = 1, workers = 3, prefetch = 2} do
        assert.are.equal(1, b.size)
        break
      end
    end
    do
      local _, loader <close> = ds:batches{batch = 2, workers = 2}
      assert.are.equal(6, #loader)
      assert.are.equal(2, loader:workers())
      assert.is_not_nil(loader:next())
    end
    local _, loader = ds:batches{batch = 2}
    loader:free()
    assert.is_nil(loader:next())
    assert.is_true(rn.now() - t0 < 10)
    ds:free() -- a loader keeps its own reference
    collectgarbage()
  end)

  it("reads BTAD (bmp or png masks), VisA's csv, JSON lines and plain folders", function()
    -- BTAD: ok/ and ko/, masks <id>.png
    image(tmp .. "/btad/01/train/ok/0000.bmp.png", 8, 8, 3, 1)
    image(tmp .. "/btad/01/test/ko/0000.png", 8, 8, 3, 2)
    mask(tmp .. "/btad/01/ground_truth/ko/0000.png", 8, 8, 4)
    local bt = rn.data.btad(tmp .. "/btad", "01", {split = "all", size = 8})
    assert.are.equal(2, #bt)
    assert.are.equal("ko", bt:get(2).defect)
    assert.are.equal(32, bt:get(2).mask:sum():item())
    -- VisA
    image(tmp .. "/visa/candle/Data/Images/Normal/0000.JPG", 8, 8, 3, 3)
    image(tmp .. "/visa/candle/Data/Images/Anomaly/000.JPG", 8, 8, 3, 4)
    mask(tmp .. "/visa/candle/Data/Masks/Anomaly/000.png", 8, 8, 2)
    text(tmp .. "/visa/split_csv/1cls.csv", "object,split,label,image,mask\n" ..
         "candle,train,normal,candle/Data/Images/Normal/0000.JPG,\n" ..
         "candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/000.png\n")
    local vt = rn.data.visa(tmp .. "/visa", "candle", {split = "test", size = 8})
    assert.are.equal(1, #vt)
    assert.are.equal("anomaly", vt:get(1).defect)
    assert.are.same({"candle"}, rn.data.categories("visa", tmp .. "/visa"))
    -- JSON lines
    text(tmp .. "/samples/test_widget.json",
         '{"filename": "widget/test/good/000.png", "label": 0, "label_name": "good", "clsname": "widget"}\n' ..
         '{"filename": "widget/test/crack/000.png", "label": 1, "label_name": "defective", ' ..
         '"maskname": "widget/ground_truth/crack/000_mask.png", "clsname": "widget"}\n')
    local js = rn.data.jsonl(tmp .. "/samples/test_widget.json", tmp, {size = 12})
    assert.are.equal(2, #js)
    assert.are.equal(72, js:get(2).mask:sum():item())
    assert.are.equal("crack", js:get(2).defect)
    -- folder
    image(tmp .. "/fold/ok/a.png", 8, 8, 3, 5)
    image(tmp .. "/fold/dent/b.png", 8, 8, 3, 6)
    image(tmp .. "/fold/rust/c.png", 8, 8, 3, 7)
    mask(tmp .. "/fold/gt/dent/b_mask.png", 8, 8, 1)
    mask(tmp .. "/fold/gt/rust/c.png", 8, 8, 2)
    local fd = rn.data.folder(tmp .. "/fold", {normal = "ok", masks = "gt", abnormal = {"dent", "rust"}, split = "test",
                                              size = 8})
    assert.are.equal(2, #fd)
    assert.are.equal(8, fd:get(1).mask:sum():item())
    assert.are.equal("rust", fd:get(2).defect)
    local fnm = rn.data.folder(tmp .. "/fold", {normal = "ok", abnormal = "dent", split = "test", size = 8, masks = "gt"})
    assert.are.equal(1, #fnm)
    assert.are.equal("mvtec", rn.data.detect(tmp .. "/widget"))
    assert.are.equal("btad", rn.data.detect(tmp .. "/btad"))
  end)

  it("rejects bad input with clear errors", function()
    fails({"does not exist", "/nonexistent_rn"}, rn.data.mvtec, "/nonexistent_rn", "bottle")
    fails({"unknown dataset kind 'imagenet'"}, rn.data.open, "imagenet", tmp, "widget")
    fails({"unknown split 'val'"}, rn.data.mvtec, tmp, "widget", {split = "val"})
    fails({"opts.size"}, rn.data.mvtec, tmp, "widget", {size = -3})
    mkdirs(tmp .. "/empty/train/good")
    fails({"empty train split"}, rn.data.mvtec, tmp, "empty")
    os.remove(tmp .. "/widget/ground_truth/crack/001_mask.png")
    fails({"missing mask", "widget/test/crack/001.png"}, rn.data.mvtec, tmp, "widget", {split = "test"})
    mask(tmp .. "/widget/ground_truth/crack/001_mask.png", 12, 12, 3)
    local ds = rn.data.mvtec(tmp, "widget", {size = 8})
    fails({"out of range"}, ds.get, ds, 99)
    fails({"opts.batch"}, ds.batches, ds, {batch = 0})
    fails({"opts.workers"}, ds.batches, ds, {workers = 1000})
    local orig = rn.data.mvtec(tmp, "widget", {size = 0})
    fails({"size"}, orig.batches, orig)
    -- a corrupt image raises from the iterator, naming the file
    text(tmp .. "/widget/train/good/004.png", "\137PNG\r\n\26\n broken")
    fails({"004.png"}, function() for _ in ds:batches{batch = 2, workers = 2} do end end)
    fails({"004.png"}, ds.get, ds, 5)
    ds:free()
    fails({"already freed"}, ds.get, ds, 1)
    fails({"does not exist"}, rn.data.check, "mvtec", "/nonexistent_rn")
  end)

  it("loads the shared magnetic_tile data (gray, varying sizes, masks paired)", function()
    local shared = os.getenv("REALNET_SHARED")
    local cat = shared and (shared .. "/data/magnetic_tile")
    if not cat or rn.file_type(cat) ~= "directory" then
      pending("no shared magnetic_tile data")
      return
    end
    local train = rn.data.mvtec(shared .. "/data", "magnetic_tile", {size = 0, normalize = false})
    assert.are.equal(762, #train)
    local a, b = train:get(1).image, train:get(400).image
    assert.are_not.same(a:shape(), b:shape())
    assert.are.equal(0, (a:select(1, 1) - a:select(1, 3)):abs():max():item()) -- gray replicated
    local test = rn.data.mvtec(shared .. "/data", "magnetic_tile", {split = "test", size = 64})
    local labels, masks = 0, 0
    for i = 1, #test do
      local e = test:entry(i)
      labels = labels + e.label
      if e.mask_path then masks = masks + 1 end
    end
    assert.are.equal(392, labels)
    assert.are.equal(392, masks)
    local n = 0
    for bt in test:batches{batch = 64, workers = 2} do
      n = n + bt.size
      if n > 128 then break end
    end
    assert.is_true(n > 128)
  end)
end)
