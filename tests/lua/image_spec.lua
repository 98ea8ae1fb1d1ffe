-- rn.image: decoding by magic bytes against the PIL fixtures of tests/fixtures/image (read through
-- rn.tensorset on the folder's .npy files), PNG/TIFF round trips, PIL-exact resize, colour conversions,
-- ImageNet normalisation, colour maps and overlays, and clear errors for bad files and bad arguments.
local rn = require "realnet"
local H = require "rnhelp"

local fixtures = (os.getenv("REALNET_FIXTURES") or "tests/fixtures") .. "/image"
local ref = assert(rn.tensorset(fixtures))
local tmp = H.tmpdir()
local spit = H.spit
local function slurp(path) return assert(H.read(path)) end

-- A 2x2 24-bit bottom-up BMP: top row red, green; bottom row blue, white.
local function tiny_bmp()
  local rows = string.char(255, 0, 0, 255, 255, 255, 0, 0) .. string.char(0, 0, 255, 0, 255, 0, 0, 0) -- BGR, padded
  return string.pack("<c2I4I2I2I4", "BM", 54 + #rows, 0, 0, 54) ..
         string.pack("<I4i4i4I2I2I4I4i4i4I4I4", 40, 2, 2, 1, 24, 0, #rows, 2835, 2835, 0, 0) .. rows
end

describe("rn.image", function()
  teardown(function() os.execute("rm -rf '" .. tmp .. "'") end)

  it("decodes PNG, JPEG and BMP as PIL does, choosing the decoder from the bytes", function()
    for _, name in ipairs { "png_rgb8", "png_gray8", "png_la8", "png_rgba8", "png_pal", "png_gray16",
                            "png_rgb8_interlaced", "bmp_rgb24", "bmp_pal8", "bmp_rgba32_v4" } do
      local ext = name:match("^bmp") and ".bmp" or ".png"
      local img = assert(rn.image.read(fixtures .. "/" .. name .. ext))
      local want = ref:load(name)
      if want:dim() == 2 then want = want:unsqueeze(3) end
      assert.are.same(want:shape(), img:shape())
      assert.are.equal(0, H.maxdiff(img, want), name)
    end
    assert.are.equal("int32", rn.image.read(fixtures .. "/png_gray16.png"):dtype()) -- 16-bit keeps its range
    -- JPEG and BMP data under .png names
    local j = assert(rn.image.read(fixtures .. "/jpeg_as_png.png"))
    assert.are.same(ref:load("jpg_rgb420"):shape(), j:shape())
    local b = assert(rn.image.read(fixtures .. "/bmp_as_png.png"))
    assert.are.equal(0, H.maxdiff(b, ref:load("bmp_rgb24")))
    assert.are.equal("jpeg", rn.image.sniff(slurp(fixtures .. "/jpeg_as_png.png")))
    assert.are.equal("bmp", rn.image.sniff(slurp(fixtures .. "/bmp_as_png.png")))
    assert.are.equal("unknown", rn.image.sniff("hello"))
  end)

  it("decodes in-memory bytes and forces channels", function()
    local img = rn.image.decode(tiny_bmp())
    assert.are.same({ { { 255, 0, 0 }, { 0, 255, 0 } }, { { 0, 0, 255 }, { 255, 255, 255 } } }, img:totable())
    local g = rn.image.decode(tiny_bmp(), { channels = 1 })
    assert.are.same({ 2, 2, 1 }, g:shape())
    -- PIL's L: (19595 R + 38470 G + 7471 B + 32768) >> 16
    assert.are.same({ { { 76 }, { 150 } }, { { 29 }, { 255 } } }, g:totable())
    local rgb = rn.image.read(fixtures .. "/png_la8.png", { channels = 3 })
    assert.are.equal(3, rgb:shape()[3])
    assert.matches("opts.channels", H.err(rn.image.decode, tiny_bmp(), { channels = 2 }))
  end)

  it("round-trips PNG (8-bit gray/RGB/RGBA, 16-bit gray) and float32 TIFF through files", function()
    local cases = {
      rn.randint(0, 256, { 5, 7, 3 }, { dtype = "uint8", seed = 1 }),
      rn.randint(0, 256, { 5, 7, 4 }, { dtype = "uint8", seed = 2 }),
      rn.randint(0, 256, { 5, 7 }, { dtype = "uint8", seed = 3 }),
      rn.randint(0, 65536, { 4, 6 }, { dtype = "int32", seed = 4 }),
    }
    for i, t in ipairs(cases) do
      local path = tmp .. "/rt" .. i .. ".png"
      rn.image.write(path, t)
      local back = assert(rn.image.read(path))
      assert.are.equal(t:dtype(), back:dtype())
      assert.are.equal(0, H.maxdiff(back:reshape(t:shape()), t))
    end
    local map = rn.randn({ 6, 9 }, { seed = 5 })
    rn.image.write(tmp .. "/map.tiff", map)
    assert.are.equal(0, H.maxdiff(assert(rn.image.read_tiff(tmp .. "/map.tiff")), map))
    local pil = assert(rn.image.read_tiff(fixtures .. "/tiff_f32.tif")) -- written by PIL
    assert.are.equal(0, H.maxdiff(pil, ref:load("tiff_f32")))
    for _, name in ipairs(rn.listdir(tmp)) do assert.is_nil(name:match("%.tmp")) end -- atomic writers
  end)

  it("resizes like PIL (bilinear with antialiasing, nearest) to within one grey level", function()
    for _, key in ipairs { "rgb", "gray", "f" } do
      local src = ref:load("rs_" .. key)
      for _, mode in ipairs { "bilinear", "nearest" } do
        for _, wh in ipairs { { 7, 5 }, { 5, 9 }, { 29, 23 }, { 20, 6 }, { 13, 11 } } do
          local want = ref:load(("rs_%s_%s_%dx%d"):format(key, mode, wh[1], wh[2]))
          local got = rn.image.resize(src, wh[2], wh[1], { mode = mode })
          local tol = key == "f" and 1e-4 or 1
          assert.is_true(H.maxdiff(got:reshape(want:shape()), want) <= tol, key .. " " .. mode)
        end
      end
    end
    local big = rn.image.resize(ref:load("rs_big"), 7, 10)
    assert.is_true(H.maxdiff(big, ref:load("rs_big_bilinear_10x7")) <= 1)
    -- float planes [C,H,W] as PIL's F mode, plane by plane
    local planes = rn.image.resize_planes(ref:load("rs_f"):reshape(1, 11, 13), 5, 7)
    assert.is_true(H.maxdiff(planes:reshape(5, 7), ref:load("rs_f_bilinear_7x5")) <= 1e-4)
  end)

  it("converts colours and normalises like torchvision", function()
    assert.are.equal(0, H.maxdiff(rn.image.to_gray(ref:load("cv_rgb")), ref:load("cv_gray")))
    assert.are.same({ 6, 8, 3 }, rn.image.to_rgb(ref:load("cv_gray")):shape())
    local px = rn.full({ 1, 1, 3 }, 124, { dtype = "uint8" })
    local f = rn.image.to_float(px)
    assert.are.same({ 3, 1, 1 }, f:shape())
    assert.is_true(math.abs(f:totable()[1][1][1] - 124 / 255) < 1e-6)
    local n = rn.image.normalize(px):totable()
    local mean, std = { 0.485, 0.456, 0.406 }, { 0.229, 0.224, 0.225 }
    for c = 1, 3 do assert.is_true(math.abs(n[c][1][1] - (124 / 255 - mean[c]) / std[c]) < 1e-5) end
    assert.are.same({ 3, 1, 1 }, rn.image.normalize(f):shape()) -- float [3,H,W] in [0,1] too
  end)

  it("draws colour maps and four-panel overlays", function()
    local heat = rn.arange(20, { dtype = "float32" }):reshape(4, 5)
    local cm = rn.image.colormap(heat)
    assert.are.same({ 4, 5, 3 }, cm:shape())
    assert.are.equal("uint8", cm:dtype())
    local lo, hi = cm:totable()[1][1], cm:totable()[4][5]
    -- viridis ends (68,1,84) and (253,231,37), to the few levels of the engine's polynomial fit
    for c, v in ipairs { 68, 1, 84 } do assert.is_true(math.abs(lo[c] - v) <= 6, "low end") end
    for c, v in ipairs { 253, 231, 37 } do assert.is_true(math.abs(hi[c] - v) <= 6, "high end") end
    local img = rn.randint(0, 256, { 4, 5, 3 }, { dtype = "uint8", seed = 1 })
    local gt = rn.zeros({ 4, 5 }, { dtype = "uint8" })
    local o = rn.image.overlay { image = img, heat = heat, gt = gt, gap = 2 }
    assert.are.same({ 4, 4 * 5 + 3 * 2, 3 }, o:shape())
    local path = tmp .. "/overlay.png"
    rn.image.overlay { image = img, heat = heat, path = path }
    assert.are.same({ 4, 4 * 5 + 3 * 4, 3 }, assert(rn.image.read(path)):shape())
    assert.matches("heat", H.err(rn.image.overlay, { image = img }))
  end)

  it("gives nil, msg for missing files and clear errors for bad ones", function()
    local img, msg = rn.image.read(tmp .. "/absent.png")
    assert.is_nil(img)
    assert.matches("absent%.png: cannot open", msg)
    assert.matches("not a PNG, JPEG or BMP", H.err(rn.image.read, fixtures .. "/text.png"))
    assert.matches("empty.png", H.err(rn.image.read, spit(tmp .. "/empty.png", "")))
    local png = slurp(fixtures .. "/png_rgb8.png")
    assert.matches("cut%.png", H.err(rn.image.read, spit(tmp .. "/cut.png", png:sub(1, #png // 2))))
    local jpg = slurp(fixtures .. "/jpg_rgb420.jpg")
    assert.matches("cut%.jpg", H.err(rn.image.read, spit(tmp .. "/cut.jpg", jpg:sub(1, 40))))
    local bmp = tiny_bmp()
    assert.matches("cut%.bmp", H.err(rn.image.read, spit(tmp .. "/cut.bmp", bmp:sub(1, 60))))
    local zero = bmp:sub(1, 18) .. string.pack("<i4i4", 0, 0) .. bmp:sub(27)
    assert.matches("zero%.bmp", H.err(rn.image.read, spit(tmp .. "/zero.bmp", zero)))
    assert.matches("<string>", H.err(rn.image.decode, "\137PNG\r\n\26\n garbage"))
    assert.matches("limit", H.err(rn.image.read, fixtures .. "/png_rgb8.png", { max_pixels = 10 }))
  end)

  it("refuses bad arguments with messages naming them", function()
    local img = rn.zeros({ 4, 4, 3 }, { dtype = "uint8" })
    assert.matches("size must be", H.err(rn.image.resize, img, 0, 4))
    assert.matches("opts.mode", H.err(rn.image.resize, img, 2, 2, { mode = "cubic" }))
    assert.matches("image.write", H.err(rn.image.write, tmp .. "/x.jpg", img))
    assert.matches("image.write", H.err(rn.image.write, tmp .. "/f.png", rn.zeros({ 4, 4, 3 })))
    assert.matches("image.write", H.err(rn.image.write, tmp .. "/no/such/dir/x.png", img))
    assert.matches("tensor expected", H.err(rn.image.write, tmp .. "/x.png", "not a tensor"))
    assert.matches("normalize", H.err(rn.image.normalize, rn.zeros({ 2, 2 })))
    assert.matches("opts.format", H.err(rn.image.read, fixtures .. "/png_rgb8.png", { format = "gif" }))
    assert.matches("jpeg", H.err(rn.image.read, fixtures .. "/png_rgb8.png", { format = "jpeg" }))
  end)
end)
