-- Experiment recipes (recipes/*.lua) through `realnet run` at smoke scale: each writes its table (Markdown,
-- CSV), metrics.json, plots and one run directory per variant trained with the intended settings; the runner's
-- override typo error, --repeat's mean ± std, -i's REPL globals, a recipe without run() and a missing gnuplot.
-- Smoke scale trains a random-init ResNet-18 at 32x32 for one epoch on a tiny demo set: metrics are not
-- meaningful and are only checked to be scores.
local rn = require "realnet"
local H = require "rnhelp"
local config = require "realnet.config"
local json = require "realnet.json"
local rundir = require "realnet.rundir"
local plot = require "realnet.plot"

local BIN = os.getenv("REALNET_BIN") or "realnet"
local RECIPES = rn.home .. "/recipes/"
local dir = H.tmpdir()
local HAVE_GNUPLOT = plot.available()

local function exists(p) return rn.file_type(p) == "file" end

-- Runs `realnet run recipes/NAME.lua --scale smoke --out runs/OUT ARGS`; returns rc, output, the run dir.
local function recipe(name, args, out)
  out = out or name
  local rc, text = H.sh(BIN, dir, ("run %s --scale smoke --out runs/%s %s"):format(H.q(RECIPES .. name .. ".lua"),
    out, args or ""))
  return rc, text, dir .. "/runs/" .. out
end

local function metrics(run) return json.decode(assert(H.read(run .. "/metrics.json"))) end

-- The rows of metrics.json by variant.
local function by_variant(run)
  local m, out = metrics(run), {}
  for _, r in ipairs(m.rows) do out[r.variant] = r end
  return out, m
end

local function is_score(v) return type(v) == "number" and v >= 0 and v <= 1 end

-- The common outputs: table.md with the title and every variant, table.csv with one line per row, metrics.json
-- with scores for every trained row, a PatchCore row, the plots (when gnuplot is here), config.lua.
local function check_outputs(run, title, variants, plots)
  local md = assert(H.read(run .. "/table.md"))
  assert.matches(title, md, 1, true)
  local rows, m = by_variant(run)
  assert.are.equal(#variants, #m.rows)
  for _, v in ipairs(variants) do
    assert.is_truthy(md:find("| " .. v .. " |", 1, true), v)
    assert.is_table(rows[v], v)
    if rows[v].method ~= "skipped" then
      assert.is_true(is_score(rows[v].image_auroc), v)
      assert.is_true(is_score(rows[v].pixel_auroc), v)
      assert.is_true(is_score(rows[v].aupro), v)
    end
  end
  local header, csv = rundir.read_csv(run .. "/table.csv")
  assert.are.equal("variant", header[1])
  assert.are.equal(#variants, #csv)
  assert.are.equal("smoke", m.scale)
  assert.is_table(config.load(run .. "/config.lua"))
  assert.matches("recipe " .. m.recipe .. ": smoke scale", assert(H.read(run .. "/log.txt")))
  for _, p in ipairs(plots or {}) do
    if HAVE_GNUPLOT then
      local png = assert(H.read(run .. "/plots/" .. p), p)
      assert.are.equal("\137PNG", png:sub(1, 4))
    end
  end
  return rows, m
end

-- The trainer config a variant ran with.
local function variant_cfg(run, variant) return assert(config.load(run .. "/" .. variant .. "/config.lua")) end

describe("recipes at smoke scale", function()
  it("ablation_afs_rrs: AFS / RDR / RLPR with and without RRS, and PatchCore", function()
    local rc, out, run = recipe("ablation_afs_rrs")
    assert.are.equal(0, rc, out)
    local rows = check_outputs(run, "Table 5a", {"afs+rrs", "afs", "rdr+rrs", "rdr", "rlpr+rrs", "rlpr", "patchcore"},
      {"ablation_afs_rrs.png"})
    assert.are.equal("patchcore", rows.patchcore.method)
    local c = variant_cfg(run, "rdr")
    assert.are.equal("rdr", c.model.afs.method)
    assert.is_false(c.model.rrs.enabled)
    c = variant_cfg(run, "rlpr+rrs")
    assert.are.equal("rlpr", c.model.afs.method)
    assert.is_true(c.model.rrs.enabled)
    assert.are.equal("patchcore", variant_cfg(run, "patchcore").method)
    assert.are.equal(1, c.trainer.epochs)                 -- the smoke scale's settings
    assert.are.equal(32, c.model.image_size)
    -- run again into the same directory: every finished variant is reused, the table is the same, down to
    -- the seconds each variant took when it ran
    local before = H.read(run .. "/table.csv")
    rc, out = recipe("ablation_afs_rrs")
    assert.are.equal(0, rc, out)
    assert.are.equal(7, select(2, out:gsub("reusing [^\n]- %(evaluated with the same config%)", "")))
    assert.are.equal(before, H.read(run .. "/table.csv"))
  end)

  it("retention_sweep: P for Max, Avg and Max&Avg, line plots", function()
    local rc, out, run = recipe("retention_sweep")
    assert.are.equal(0, rc, out)
    local rows = check_outputs(run, "Fig. 5", {"max P=0.1", "max P=0.5", "max P=1", "avg P=0.1", "avg P=0.5",
      "avg P=1", "maxavg P=0.1", "maxavg P=0.5", "maxavg P=1", "patchcore"},
      {"retention_image_auroc.png", "retention_pixel_auroc.png"})
    assert.are.equal("Max&Avg", rows["maxavg P=0.5"].mode)
    assert.are.equal(0.5, rows["maxavg P=0.5"].P)
    local c = variant_cfg(run, "avg_P=0.5")
    assert.are.equal("avg", c.model.rrs.mode)
    assert.are.equal(0.5, c.model.rrs.ratio)
  end)

  it("strength_sweep: SIA images sampled per strength s", function()
    local rc, out, run = recipe("strength_sweep")
    assert.are.equal(0, rc, out)
    check_outputs(run, "Table 5b", {"s=0", "s=0.1", "s=0.2", "s=U[0.1, 0.2]", "patchcore"}, {"strength_sweep.png"})
    assert.matches("randomly initialised SDAS U%-Net", assert(H.read(run .. "/table.md")))
    for _, s in ipairs{"0", "0.1", "0.2", "0.1-0.2"} do
      local names = rn.listdir(run .. "/inputs/sia/s" .. s) or {}
      assert.are.equal(16, #names, s)
    end
    local c = variant_cfg(run, "s=U_0.1_0.2_")
    assert.are.equal("sia", c.synth.source)
    assert.matches("/inputs/sia/s0%.1%-0%.2$", c.synth.sia)
  end)

  it("synthesis_compare: SIA, DTD, NSA and CutPaste", function()
    local rc, out, run = recipe("synthesis_compare")
    assert.are.equal(0, rc, out)
    check_outputs(run, "Table 1", {"sia", "dtd", "nsa", "cutpaste", "patchcore"}, {"synthesis_compare.png"})
    for _, s in ipairs{"sia", "dtd", "nsa", "cutpaste"} do assert.are.equal(s, variant_cfg(run, s).synth.source) end
    assert.matches("/inputs/textures$", variant_cfg(run, "dtd").synth.dtd)
  end)

  it("architectures: A, B, C with speed and size", function()
    local rc, out, run = recipe("architectures")
    assert.are.equal(0, rc, out)
    local rows = check_outputs(run, "Table S4", {"arch A", "arch B", "arch C", "patchcore"},
      {"architectures.png", "architectures_speed.png"})
    for _, a in ipairs{"A", "B", "C"} do
      local r = rows["arch " .. a]
      assert.is_true(r.img_s > 0, a)
      assert.is_true(r.params_m > 0, a)
      assert.are.equal(a, variant_cfg(run, "arch_" .. a).model.recon.arch)
    end
    assert.is_true(rows.patchcore.img_s > 0)
    assert.is_nil(rows.patchcore.params_m)
  end)

  it("backbone_swap under -i: backbones with their PatchCore rows, then results, replot and compare", function()
    local stdin = table.concat({
      "results.rows[1].variant",
      "#results.rows",
      "#replot{kind = 'bars', file = 'again.png', metrics = {'image_auroc'}}",
      "#compare().rows",
    }, "\n") .. "\n"
    local out, err, code = H.run(BIN, dir, ("-i %s --scale smoke --out %s/runs/backbone_swap"):format(
      H.q(RECIPES .. "backbone_swap.lua"), dir), {stdin = stdin})
    assert.are.equal(0, code, err)
    local run = dir .. "/runs/backbone_swap"
    local rows = check_outputs(run, "Table S3", {"resnet18", "patchcore resnet18", "mobilenetv2",
      "patchcore mobilenetv2", "resnet50v2", "patchcore resnet50v2"}, {"backbone_swap.png"})
    assert.are.equal("mobilenetv2", variant_cfg(run, "mobilenetv2").model.backbone.arch)
    assert.are.equal("mobilenetv2", variant_cfg(run, "patchcore_mobilenetv2").model.backbone.arch)
    assert.are.same({8, 16, 16}, variant_cfg(run, "resnet50v2").model.afs.dims)
    assert.are.equal("8/16/16", rows.resnet18.afs_dims)
    -- the REPL lines: the first row, the row count, replot's file, compare's rows
    assert.matches("\nresnet18\n6\n" .. (HAVE_GNUPLOT and 1 or 0) .. "\n", out)
    assert.matches("compared with " .. run:gsub("%p", "%%%0") .. ":resnet18", out)
    assert.matches("\n6\n$", out)
    if HAVE_GNUPLOT then assert.is_true(exists(run .. "/plots/again.png")) end
  end)

  it("backbone_swap skips a backbone without weights with a note", function()
    local rc, out, run = recipe("backbone_swap", "--random_init=false --backbones=resnet34", "bb_skip")
    assert.are.equal(0, rc, out)
    local rows = check_outputs(run, "Table S3", {"resnet34"})
    assert.are.equal("skipped", rows.resnet34.method)
    assert.matches("resnet34 skipped: no weights %(pass %-%-weights%.resnet34=FILE%)", H.read(run .. "/table.md"))
    assert.is_nil(rn.file_type(run .. "/resnet34"))
  end)

  it("quickstart keeps its output lines", function()
    local rc, out, run = recipe("quickstart")
    assert.are.equal(0, rc, out)
    assert.matches("quickstart done in %d+:%d+: image AUROC [%d.]+, pixel AUROC [%d.]+, AU%-PRO [%d.]+ %(random%-init backbone%)", out)
    assert.matches("overlays: .-/realnet/images/demo_surface/", out)
    assert.matches("score new images: realnet predict .-/realnet IMAGE", out)
    assert.is_true(exists(run .. "/realnet/model.h5"))
    assert.are.equal("dtd", variant_cfg(run, "realnet").synth.source)
  end)
end)

describe("the recipe runner", function()
  it("fails at once on a typo in an override key, listing the valid keys nearest first", function()
    local rc, out = recipe("retention_sweep", "--train.model.rrs.rattio=0.5", "typo")
    assert.are.equal(2, rc, out)
    assert.matches("unknown key 'train%.model%.rrs%.rattio'; valid keys %(nearest first%): train%.model%.rrs%.ratio,", out)
    assert.is_nil(rn.file_type(dir .. "/runs/typo"))
    rc, out = recipe("retention_sweep", "--scael smoke", "typo")
    assert.are.equal(2, rc)
    assert.matches("did you mean %-%-scale%?", out)
    rc, out = H.sh(BIN, dir, "run " .. H.q(RECIPES .. "retention_sweep.lua") .. " --scale gpu")
    assert.are.equal(2, rc)
    assert.matches("has no scale 'gpu' %(scales: cpu, paper, smoke%)", out)
    rc, out = recipe("retention_sweep", "--ratios=0.1,x", "typo")
    assert.are.equal(2, rc)
    assert.matches("ratios: item 2: expected a number, got 'x'", out)
    rc, out = H.sh(BIN, dir, "run " .. H.q(RECIPES .. "retention_sweep.lua") .. " --scale paper --out runs/typo")
    assert.are.equal(2, rc)
    assert.matches("scale 'paper' needs a dataset: %-%-data DIR", out)
    assert.is_nil(rn.file_type(dir .. "/runs/typo"))
  end)

  it("prints the resolved config with the scale and overrides applied", function()
    local rc, out = recipe("retention_sweep", "--print-config --ratios=0.25 --epochs 3", "pc")
    assert.are.equal(0, rc, out)
    local cfg = assert(load(out:gsub("rc=%d+%s*$", ""), "=config", "t", {math = math}))()
    assert.are.same({0.25}, cfg.ratios)
    assert.are.equal(3, cfg.train.trainer.epochs)
    assert.are.equal(32, cfg.train.model.image_size)
    assert.are.equal("cpu", cfg.preset)
  end)

  it("--repeat 2 reports mean ± std over two seeds", function()
    local rc, out, run = recipe("ablation_afs_rrs", "--repeat 2 --selections=afs --rrs=true", "rep")
    assert.are.equal(0, rc, out)
    local md = assert(H.read(run .. "/table.md"))
    assert.matches("| afs%+rrs | AFS | yes | %d%.%d+ ± %d%.%d+ |", md)
    assert.matches("mean ± standard deviation over 2 seeds %(100, 101%)", md)
    local rows, m = by_variant(run)
    assert.are.same({100, 101}, m.seeds)
    for _, v in ipairs{"afs+rrs", "patchcore"} do
      local a = by_variant(run .. "/seed-100")
      local b = by_variant(run .. "/seed-101")
      local x, y = a[v].image_auroc, b[v].image_auroc
      assert.is_true(math.abs(rows[v].image_auroc - (x + y) / 2) < 1e-12, v)
      assert.is_true(math.abs(rows[v].image_auroc_std - math.abs(x - y) / math.sqrt(2)) < 1e-12, v)
      assert.are.equal(2, rows[v].n)
    end
    assert.are.equal(101, variant_cfg(run .. "/seed-101", "afs+rrs").trainer.seed)
  end)

  it("runs a recipe without run() as one variant and writes its tables without gnuplot", function()
    H.spit(dir .. "/mine.lua", [[
      local E = require "realnet.experiment"
      return E.base{name = "mine", title = "my one-variant recipe", baseline = false, scales = E.scales{}}
    ]])
    local rc, out = H.sh("PATH=/nonexistent " .. H.q(BIN), dir, "run mine.lua --out runs/mine")
    assert.are.equal(0, rc, out)
    assert.matches("gnuplot is not installed", out)
    assert.matches("| realnet |", assert(H.read(dir .. "/runs/mine/table.md")))
    assert.are.equal(1, #metrics(dir .. "/runs/mine").rows)
    -- a plain script still runs as a script
    H.spit(dir .. "/plain.lua", "print('plain', #arg)\n")
    rc, out = H.sh(BIN, dir, "run plain.lua a b")
    assert.are.equal(0, rc, out)
    assert.are.equal("plain\t2\nrc=0\n", out)
  end)
end)
