-- `realnet compare` and the pieces recipes report with: Markdown/CSV tables, mean ± std over seeds, comparison
-- deltas (realnet.report) and gnuplot PNGs (realnet.plot). The run directories here are written by hand (a
-- metrics.json as `realnet eval` and the recipe runner write them), so nothing is trained.
local rn = require "realnet"
local H = require "rnhelp"
local json = require "realnet.json"
local rundir = require "realnet.rundir"
local report = require "realnet.report"
local plot = require "realnet.plot"

local BIN = os.getenv("REALNET_BIN") or "realnet"
local dir = H.tmpdir()

local function metrics_dir(name, doc)
  local d = dir .. "/" .. name
  rundir.mkdir(d)
  H.spit(d .. "/metrics.json", json.encode(doc))
  return d
end

describe("realnet.report", function()
  it("writes Markdown with right-aligned numbers and a CSV that reads back", function()
    local tbl = {title = "T", columns = {"variant", "P", "image_auroc", "seconds", "n_images"},
                 rows = {{variant = "a|b", P = 0.5, image_auroc = 0.91234, seconds = 12.345, n_images = 7},
                         {variant = "c", P = 1, image_auroc = 1, seconds = 3}},
                 notes = {"a note"}}
    local md = report.markdown(tbl)
    assert.are.equal(table.concat({
      "### T", "",
      "| variant | P | image_auroc | seconds | n_images |",
      "|---|---:|---:|---:|---:|",
      "| a\\|b | 0.5000 | 0.9123 | 12.3 | 7 |",
      "| c | 1.0000 | 1.0000 | 3.0 | - |",  -- a score of 1 reads as a score; a missing value as "-"
      "", "- a note", ""}, "\n"), md)
    local mdp, csvp = report.write(dir, "t", tbl)
    assert.are.equal(md, H.read(mdp))
    local header, rows = rundir.read_csv(csvp)
    assert.are.same({"variant", "P", "image_auroc", "seconds", "n_images"}, header)
    assert.are.same({"a|b", "0.5", "0.91234", "12.345", "7"}, rows[1])
    assert.are.same({"c", "1", "1", "3", ""}, rows[2])
  end)

  it("aggregates rows of several seeds into mean and sample standard deviation", function()
    local s1 = {{variant = "x", mode = "Max", image_auroc = 0.8, seconds = 10}, {variant = "pc", image_auroc = 0.5}}
    local s2 = {{variant = "x", mode = "Max", image_auroc = 0.9, seconds = 14}, {variant = "pc", image_auroc = 0.7}}
    local s3 = {{variant = "x", mode = "Max", image_auroc = 1.0, seconds = 12}}
    local rows = report.aggregate({s1, s2, s3}, "variant", {"image_auroc", "seconds"})
    assert.are.equal(2, #rows)
    assert.are.equal("x", rows[1].variant)
    assert.are.equal("Max", rows[1].mode)
    assert.is_true(math.abs(rows[1].image_auroc - 0.9) < 1e-12)
    assert.is_true(math.abs(rows[1].image_auroc_std - 0.1) < 1e-12)
    assert.are.equal(12, rows[1].seconds)
    assert.are.equal(2, rows[1].seconds_std)
    assert.are.equal(3, rows[1].n)
    assert.are.equal(2, rows[2].n)                      -- a row missing from one seed
    assert.is_true(math.abs(rows[2].image_auroc_std - math.sqrt(0.02)) < 1e-12)
    local tbl = {columns = {"variant", "image_auroc"}, rows = rows}
    assert.matches("| x | 0%.9000 ± 0%.1000 |", report.markdown(tbl))
    assert.are.same({"variant", "image_auroc", "image_auroc_std", "n"}, report.csv_columns(tbl))
    local m, sd, n = report.mean_std({1, 0 / 0, 3})
    assert.are.same({2, math.sqrt(2), 2}, {m, sd, n})    -- NaN is left out
    assert.are.same({0.5, 0, 1}, {report.mean_std({0.5})})
  end)
end)

describe("realnet compare", function()
  local a = metrics_dir("run_a", {image_auroc = 0.9, pixel_auroc = 0.95, aupro = 0.8, f1_max = 0.7, method = "realnet"})
  local b = metrics_dir("run_b", {image_auroc = 0.85, pixel_auroc = 0.97, aupro = 0.75, f1_max = 0.72})
  local r = metrics_dir("recipe_run", {recipe = "x", key = "variant", rows = {
    {variant = "afs", image_auroc = 0.95, pixel_auroc = 0.9, aupro = 0.7},
    {variant = "patchcore", image_auroc = 0.8, pixel_auroc = 0.99, aupro = 0.9}}})

  it("tabulates runs with deltas to the first, recipe runs row by row, and writes CSV", function()
    local out, err, code = H.run(BIN, dir, ("compare %s %s %s --csv %s/c.csv --markdown %s/c.md"):format(a, b, r, dir,
      dir))
    assert.are.equal(0, code, err)
    assert.matches("compared with " .. a:gsub("%p", "%%%0"), out)
    assert.matches("| " .. b:gsub("%p", "%%%0") .. " | 0%.8500 %(%-0%.0500%) | 0%.9700 %(%+0%.0200%) | 0%.7500 %(%-0%.0500%) "
      .. "| 0%.7200 %(%+0%.0200%) |", out)
    assert.matches("| " .. r:gsub("%p", "%%%0") .. ":patchcore | 0%.8000 %(%-0%.1000%) | 0%.9900 %(%+0%.0400%) | "
      .. "0%.9000 %(%+0%.1000%) | %- |", out)
    assert.are.equal(out, H.read(dir .. "/c.md"))
    local header, rows = rundir.read_csv(dir .. "/c.csv")
    assert.are.same({"run", "image_auroc", "image_auroc_delta", "pixel_auroc", "pixel_auroc_delta", "aupro",
                     "aupro_delta", "f1_max", "f1_max_delta"}, header)
    assert.are.equal(4, #rows)
    assert.are.equal("", rows[1][3])                     -- no delta for the reference
    assert.is_true(math.abs(tonumber(rows[3][3]) - 0.05) < 1e-12)
  end)

  it("takes a metric list and fails clearly on a directory without metrics.json", function()
    local out, err, code = H.run(BIN, dir, ("compare %s %s --metrics aupro"):format(b, a))
    assert.are.equal(0, code, err)
    assert.matches("| run | aupro |", out, 1, true)
    assert.matches("0%.8000 %(%+0%.0500%)", out)
    local _, err2, code2 = H.run(BIN, dir, ("compare %s %s/absent"):format(a, dir))
    assert.are.equal(1, code2)
    assert.matches("absent has no metrics%.json", err2)
    local _, err3, code3 = H.run(BIN, dir, "compare")
    assert.are.equal(2, code3)
    assert.matches("no run directories given", err3)
  end)
end)

describe("realnet.plot", function()
  local ok = plot.available()

  it("draws line plots and grouped bar charts as PNG, or says gnuplot is missing", function()
    local args = {path = dir .. "/l.png", title = "loss_curve", xlabel = "step", ylabel = "loss",
                  series = {{name = "train", x = {1, 2, 3}, y = {0.9, 0 / 0, 0.4}}, {name = "val", x = {1, 3}, y = {1, 0.5}}}}
    local bars = {path = dir .. "/b.png", title = "t", ylabel = "AUROC", groups = {"afs", "rdr"},
                  series = {{name = "image", values = {0.9, 0.8}}, {name = "pixel", values = {0.95, 0 / 0}}},
                  errors = {{0.01, 0.02}, {0.0, 0.0}}}
    if ok then
      assert.are.equal(args.path, plot.lines(args))
      assert.are.equal(bars.path, plot.bars(bars))
      for _, p in ipairs{args.path, bars.path} do
        assert.are.equal("\137PNG", H.read(p):sub(1, 4))
        assert.is_nil(rn.file_type(p .. ".gp"))        -- the script and data are removed after success
      end
    else
      assert.matches("gnuplot is not installed", H.err(plot.lines, args))
    end
  end)

  it("rejects bad arguments naming the problem", function()
    assert.matches("path must name a %.png file", H.err(plot.lines, {path = dir .. "/x.svg", series = {}}))
    assert.matches("series must be a non%-empty list", H.err(plot.lines, {path = dir .. "/x.png", series = {}}))
    assert.matches("series 1 %(a%) needs lists x and y of the same length",
      H.err(plot.lines, {path = dir .. "/x.png", series = {{name = "a", x = {1, 2}, y = {1}}}}))
    assert.matches("groups must be a non%-empty list", H.err(plot.bars, {path = dir .. "/x.png", series = {{values = {}}}}))
  end)
end)
