-- `realnet predict` and the predictor: JSON lines, maps and overlays on request, the same scores as eval, clear
-- errors for unreadable images, images with an unexpected channel count and files that are not models, and the
-- C API example program. One tiny RealNet (32x32 input on 64x64 images) is trained once.
local rn = require "realnet"
local json = require "realnet.json"
local predictor = require "realnet.predictor"
local H = require "rnhelp"

local BIN = os.getenv("REALNET_BIN") or "realnet"
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local DATA = dir .. "/demo"
rn.demo_data.make(DATA, {seed = 1, size = 64, train = 8, test_good = 2, test_defect = 1})
local CAT = DATA .. "/demo_surface"

local TINY = H.TINY_TRAIN

local function sh(args, stderr_apart)
  local redirect = stderr_apart and (" 2>" .. dir .. "/stderr.txt") or " 2>&1"
  local f = io.popen(("cd %s && %s %s%s; echo \"rc=$?\""):format(dir, BIN, args, redirect))
  local out = f:read("a")
  f:close()
  return tonumber(out:match("rc=(%d+)%s*$")), out:gsub("rc=%d+%s*$", "")
end

local function lines(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do if l:sub(1, 1) == "{" then out[#out + 1] = json.decode(l) end end
  return out
end

local rc0, out0 = sh("train --data demo --category demo_surface --out run --epochs 1 " .. TINY)
assert(rc0 == 0, out0)
local RUN = dir .. "/run"

describe("realnet predict", function()
  it("prints one JSON line per image, loads the model once, and writes maps and overlays on request", function()
    local rc, out = sh(("predict run %s/test/crack %s/test/good/000.png --maps maps --overlays ov"):format(CAT, CAT), true)
    assert.are.equal(0, rc, out)
    local got = lines(out)
    assert.are.equal(2, #got)
    local p = predictor.open(RUN)
    for _, l in ipairs(got) do
      assert.is_string(l.path)
      assert.is_number(l.score)
      assert.is_boolean(l.label)
      assert.are.equal(l.score >= p.threshold, l.label)
      local t = assert(rn.image.read_tiff(dir .. "/" .. l.map))
      assert.are.same({64, 64}, t:shape()) -- the image's own size
    end
    assert.matches("crack/000%.png$", got[1].path)
    -- two inputs named 000.png: distinct map files
    assert.are_not.equal(got[1].map, got[2].map)
    assert.are.equal("file", rn.file_type(dir .. "/ov/000.png"))
    -- the same scores as the predictor in-process and as eval's batches
    local r = p:predict_file(CAT .. "/test/crack/000.png")
    assert.is_true(math.abs(r.score - got[1].score) < 1e-6)
    local ds = rn.data.mvtec(DATA, "demo_surface", {split = "test", size = 32})
    for i = 1, #ds do
      local item = ds:get(i)
      if item.path:match("crack/000%.png$") then
        local _, s = p:predict_batch(item.image:unsqueeze(1))
        assert.is_true(math.abs(s:item() - r.score) < 1e-6)
      end
    end
  end)

  it("reports unreadable images on stderr and as error lines, and exits 1", function()
    local f = io.open(dir .. "/broken.png", "wb")
    f:write("not an image")
    f:close()
    local rc, out = sh(("predict run broken.png %s/test/good/001.png"):format(CAT), true)
    assert.are.equal(1, rc)
    local got = lines(out)
    assert.are.equal(2, #got)
    assert.matches("broken%.png", got[1].error)
    assert.is_number(got[2].score)
  end)

  it("rejects images with an unexpected channel count, and files that are not models", function()
    local p = predictor.open(RUN)
    local five = rn.zeros({40, 40, 5}):to("uint8")
    assert.matches("5 channels; expected 1 %(gray%), 2 %(gray%+alpha%), 3 %(RGB%) or 4 %(RGBA%)",
      H.err(p.predict_image, p, five))
    assert.matches("1 channels", H.err(p.predict_batch, p, rn.zeros({1, 1, 32, 32})))
    assert.matches("trained at 32x32", H.err(p.predict_batch, p, rn.zeros({1, 3, 64, 64})))
    -- gray, gray+alpha and RGBA files are prepared as the datasets do
    local rgb = rn.image.read(CAT .. "/test/good/000.png")
    local gray = rn.image.to_gray(rgb)
    assert.is_number(p:predict_image(gray).score)
    local rgba = rn.cat({rgb, rn.full({64, 64, 1}, 255):to("uint8")}, 3)
    assert.is_true(math.abs(p:predict_image(rgba).score - p:predict_image(rgb).score) < 1e-6)
    -- not a model
    assert.matches("not a model file %(not HDF5%)", H.err(predictor.open, CAT .. "/test/good/000.png"))
    rn.h5.save(dir .. "/plain.h5", {x = rn.zeros({2})})
    assert.matches("not a model of `realnet train`", H.err(predictor.open, dir .. "/plain.h5"))
    assert.matches("has no model.h5", H.err(predictor.open, DATA))
    local rc, out = sh("predict demo " .. CAT .. "/test/good/000.png")
    assert.are.equal(1, rc)
    assert.matches("has no model.h5", out)
  end)

  it("scores the same through the C API example program", function()
    local example = BIN:gsub("realnet$", "realnet-predict-example")
    if rn.file_type(example) ~= "file" then
      pending("realnet-predict-example is not built")
      return
    end
    local img = CAT .. "/test/crack/000.png"
    local f = io.popen(("%s %s %s 2>&1"):format(example, RUN, img))
    local out = f:read("a")
    f:close()
    local score = tonumber(out:match(img:gsub("%p", "%%%0") .. " ([%d%.e%-]+)"))
    assert.is_number(score, out)
    local r = predictor.open(RUN):predict_file(img)
    assert.is_true(math.abs(score - r.score) < 1e-5)
    assert.matches("map 64x64", out)
  end)
end)
