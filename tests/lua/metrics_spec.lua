-- rn.metrics: AUROC, F1-max, AU-PRO (MVTec and RealNet variants) and evaluate against the committed
-- references of tests/fixtures/gen_metrics.py; AUROC below 0.5 kept as is with a warning; clear errors.
local rn = require "realnet"
local H = require "rnhelp"

local fixtures = os.getenv("REALNET_FIXTURES") or "tests/fixtures"
local fx = assert(rn.tensorset(fixtures .. "/metrics")) -- kept open: the describe blocks run after this chunk

local expected = {}
for line in io.lines(fixtures .. "/metrics/expected.txt") do
  local k, v = line:match("^(%S+)%s+(%S+)$")
  if k then expected[k] = tonumber(v) or (v == "nan" and 0 / 0) end
end

local function near(want, got, tol)
  assert.is_true(math.abs(want - got) <= (tol or 1e-6), ("want %.12g, got %.12g"):format(want, got))
end

local function fails(wants, f, ...)
  local msg = H.err(f, ...)
  assert.is_not_nil(msg, "expected an error mentioning " .. table.concat(wants, ", "))
  for _, want in ipairs(wants) do assert.matches(want, msg, 1, true) end
end

describe("image metrics", function()
  it("agree with scikit-learn (ties, all-equal, perfect and inverted)", function()
    for _, case in ipairs { "random", "ties", "equal", "perfect", "inverted", "mvtec_doc" } do
      local s, y = fx:load(case .. "_s"), fx:load(case .. "_y")
      near(expected[case .. ".auroc"], rn.metrics.auroc(s, y))
      local f1, thr = rn.metrics.f1_max(s, y)
      near(expected[case .. ".f1"], f1)
      near(expected[case .. ".f1_thr"], thr, 1e-7)
    end
  end)

  it("accept lists of numbers and keep an AUROC below 0.5", function()
    assert.are.equal(0.0, rn.metrics.auroc({ 0.9, 0.8, 0.1, 0.2 }, { 0, 0, 1, 1 }))
    assert.are.equal(0.5, rn.metrics.auroc({ 1, 1, 1, 1 }, { 0, 1, 0, 1 }))
  end)
end)

describe("pixel metrics", function()
  it("agree with the MVTec evaluation code and RealNet's EvalPixelPro", function()
    for _, case in ipairs { "px_smooth", "px_ties", "px_coarse", "px_diag", "px_exact" } do
      local maps, masks = fx:load(case .. "_maps"), fx:load(case .. "_masks")
      near(expected[case .. ".aupro_0.3"], rn.metrics.aupro(maps, masks))
      near(expected[case .. ".aupro_0.1"], rn.metrics.aupro(maps, masks, { limit = 0.1 }))
      near(expected[case .. ".aupro_1"], rn.metrics.aupro(maps, masks, { limit = 1 }))
      near(expected[case .. ".pro_realnet"], rn.metrics.aupro(maps, masks, { variant = "realnet" }))
    end
  end)

  it("evaluate returns every metric in one table", function()
    local maps, masks = fx:load("px_smooth_maps"), fx:load("px_smooth_masks")
    -- image score: the map maximum per image (any score works here)
    local scores = maps:reshape(6, -1):max(2)
    local r = rn.metrics.evaluate(scores, maps, masks, nil, { quiet = true })
    near(expected["px_smooth.pixel_auroc"], r.pixel_auroc)
    near(expected["px_smooth.aupro_0.3"], r.aupro)
    near(expected["px_smooth.f1"], r.f1_max_pixel)
    near(expected["px_smooth.pro_realnet"], r.pro_realnet)
    assert.are.equal(6, r.n_images)
    assert.are.equal(4, r.n_anomalous)
    assert.are.equal(expected["px_smooth.regions"], r.n_regions)
    assert.are.equal(0.3, r.aupro_limit)
    assert.is_number(r.image_auroc)
    assert.is_number(r.f1_max_image)
    assert.is_number(r.f1_threshold_image)
    near(rn.metrics.auroc(scores, rn.metrics.image_labels(masks)), r.image_auroc, 0)
  end)

  it("evaluate warns on stderr when an AUROC is below 0.5, and does not flip it", function()
    local masks = rn.zeros({ 2, 4, 4 })
    masks:narrow(1, 2, 1):narrow(2, 1, 2):fill_(1)
    local maps = rn.sub(1, masks)                     -- defects score lowest: inverted
    local path = os.tmpname()
    local saved = io.stderr
    local f = assert(io.open(path, "w"))
    io.stderr = f
    local ok, r = pcall(rn.metrics.evaluate, { 0.9, 0.1 }, maps, masks, nil, { realnet_pro = false })
    io.stderr = saved
    f:close()
    local text = assert(io.open(path)):read("a")
    os.remove(path)
    assert.is_true(ok, tostring(r))
    assert.are.equal(0.0, r.image_auroc)
    assert.are.equal(0.0, r.pixel_auroc)
    assert.matches("image AUROC 0.0000 is below 0.5", text, 1, true)
    assert.matches("pixel AUROC", text, 1, true)
    assert.is_nil(r.pro_realnet)
  end)
end)

describe("bad input", function()
  local maps, masks = fx:load("px_smooth_maps"), fx:load("px_smooth_masks")
  it("is refused with clear messages", function()
    fails({ "only one class" }, rn.metrics.auroc, { 0.1, 0.2 }, { 1, 1 })
    fails({ "2 NaN" }, rn.metrics.auroc, { 0 / 0, 0.2, 0 / 0 }, { 0, 1, 1 })
    fails({ "do not match" }, rn.metrics.auroc, { 0.1, 0.2, 0.3 }, { 0, 1 })
    fails({ "empty" }, rn.metrics.auroc, rn.zeros(0), rn.zeros(0))
    fails({ "do not match", "[6,32,31]" }, rn.metrics.aupro, maps:narrow(3, 1, 31), masks)
    fails({ "no defect" }, rn.metrics.aupro, maps, rn.zeros({ 6, 32, 32 }))
    fails({ "limit" }, rn.metrics.aupro, maps, masks, { limit = 0 })
    fails({ "variant" }, rn.metrics.aupro, maps, masks, { variant = "other" })
    fails({ "5 image scores for 6 maps" }, rn.metrics.evaluate, rn.zeros(5), maps, masks)
    fails({ "scores must be a tensor" }, rn.metrics.auroc, "x", { 1 })
  end)
end)
