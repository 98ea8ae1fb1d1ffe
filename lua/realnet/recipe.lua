--- realnet.recipe: the experiment recipe runner behind `realnet run recipes/X.lua` and `realnet -i recipes/X.lua`.
--
-- A recipe is a Lua file that returns a config table, and may define run(cfg, ctx):
--
--   local E = require "realnet.experiment"
--   return E.base{
--     name = "my_sweep", title = "what the table shows",
--     ratios = {0.1, 0.5},                          -- any field is a config field: --ratios=0.2,0.4
--     scales = E.scales{smoke = {ratios = {0.5}}},  -- smoke | cpu | paper, merged over the fields
--     run = function(cfg, ctx)                      -- returns {columns, rows, key, metrics, plots, notes}
--       local variants = {}
--       for _, r in ipairs(cfg.ratios) do variants[#variants + 1] = {name = "P=" .. r, set = {["model.rrs.ratio"] = r}} end
--       return {columns = {"variant", "image_auroc"}, rows = E.sweep(ctx, variants)}
--     end,
--   }
--
-- Not config fields: name, title, description, scales, run, flags, default_scale. `train` is the training config
-- of realnet.trainer: the recipe gives the fields it changes, the runner fills in the preset's defaults (the
-- field `preset`, cpu or paper), so --train.model.rrs.ratio=0.5 or --train.trainer.epochs=3 reach any of them.
-- Order: fields < scales[scale] < flags (--weights, --data, --category, --epochs; a recipe's `flags` table
-- {name = "dotted.key" | false} adds, remaps or drops them) < --key.sub=value overrides (typed by the field's default; an unknown key fails at once
-- listing the valid keys, nearest first). `--repeat N` runs seeds seed .. seed + N - 1 (each in seed-<s>/) and
-- reports mean ± std; every run writes config.lua (resolved), log.txt, table.md, table.csv, metrics.json and
-- plots/*.png into its run directory (runs/<name>-<timestamp>, or --out).
local cli = require "realnet.cli"
local config = require "realnet.config"
local rundir = require "realnet.rundir"
local trainer = require "realnet.trainer"
local report = require "realnet.report"
local plot = require "realnet.plot"
local json = require "realnet.json"
local E = require "realnet.experiment"

local M = {}

M.META = {name = true, title = true, description = true, scales = true, run = true, flags = true, default_scale = true}
M.FLAGS = {weights = "train.model.backbone.weights", data = "data.root", category = "data.category",
           epochs = "train.trainer.epochs"}
M.METRICS = {"image_auroc", "pixel_auroc", "aupro", "f1_max", "seconds", "img_s"}

local function clean(msg) return (tostring(msg):gsub("^[^\n]-%.lua:%d+: ", "")) end

--- Loads a recipe file (it runs with the usual globals and may require realnet); returns its table.
function M.load(path)
  local chunk, err = loadfile(path)
  if not chunk then error("recipe: " .. err, 0) end
  local ok, t = pcall(chunk)
  if not ok then error(("recipe: %s: %s"):format(path, clean(t)), 0) end
  if type(t) ~= "table" then error(("recipe: %s must return a config table, got %s"):format(path, type(t)), 0) end
  t._path = path
  return t
end

--- The recipe's name: its `name` field, else the file name without .lua.
function M.name(recipe, path)
  return recipe.name or ((path or recipe._path or "recipe"):match("([^/]+)$"):gsub("%.lua$", ""))
end

--- The valid scale names of a recipe, sorted.
function M.scale_names(recipe)
  local names = {}
  for k in pairs(recipe.scales or {}) do names[#names + 1] = k end
  table.sort(names)
  return names
end

--- resolve(recipe, opts{scale, overrides = {{key, text}, ...} or {key = text}}) -> cfg, info{name, scale, preset}.
-- Raises on an unknown scale or key, or a value of the wrong type.
function M.resolve(recipe, opts)
  opts = opts or {}
  local name = M.name(recipe)
  local scales = recipe.scales or {}
  local scale = opts.scale or recipe.default_scale or (scales.smoke and "smoke") or nil
  if scale and not scales[scale] then
    local names = M.scale_names(recipe)
    error(("recipe %s has no scale '%s' (scales: %s)"):format(name, scale, #names > 0 and table.concat(names, ", ")
      or "none"), 0)
  end
  local over = {}
  if config.is_list(opts.overrides or {}) then
    for _, kv in ipairs(opts.overrides or {}) do over[#over + 1] = kv end
  else
    for k, v in pairs(opts.overrides) do over[#over + 1] = {k, v} end
    table.sort(over, function(a, b) return a[1] < b[1] end)
  end
  local sc = config.copy(scale and scales[scale] or {})
  local preset = sc.preset or recipe.preset or "cpu"
  for _, kv in ipairs(over) do if kv[1] == "preset" then preset = kv[2] end end
  if preset ~= "cpu" and preset ~= "paper" then error(("preset must be cpu or paper, not '%s'"):format(preset), 0) end
  sc.preset = nil
  local cfg = {}
  for k, v in pairs(recipe) do
    if not M.META[k] and k ~= "_path" and type(v) ~= "function" then cfg[k] = config.copy(v) end
  end
  local base_train = cfg.train or {}
  cfg.train = trainer.defaults{preset = preset}
  cfg.preset = preset
  if next(base_train) then config.merge(cfg, {train = base_train}, "the recipe's train") end
  config.merge(cfg, sc, "scales." .. tostring(scale))
  for _, kv in ipairs(over) do if kv[1] ~= "preset" then config.set(cfg, kv[1], kv[2]) end end
  local d = cfg.data
  if d and d.demo == false and (d.root == "" or d.category == "") then
    error(("scale '%s' needs a dataset: --data DIR (data.root) and --category NAME (data.category)"):format(
      tostring(scale)), 0)
  end
  if d and d.root and d.root ~= "" then d.root = trainer.abspath(d.root) end
  local bb = cfg.train.model.backbone
  if bb.weights then bb.weights = trainer.abspath(bb.weights) end
  return cfg, {name = name, scale = scale, preset = preset}
end

-- ------------------------------------------------------------------ plots

local function label_of(v)
  if type(v) == "number" then return ("%g"):format(v) end
  return tostring(v)
end

--- plot.lines / plot.bars arguments of a plot spec over result rows:
--   {kind = "bars", file, title, ylabel, metrics = {...}}: one cluster per row (labelled by row[key]);
--   {kind = "lines", file, title, xlabel, ylabel, x = col, y = col, series = col}: a line per value of
--   row[series]; rows without an x value (the baseline) are drawn as flat lines over the x range.
function M.plot_args(results, spec, dir)
  local rows, key = results.rows, results.key
  local a = {path = dir .. "/" .. spec.file, title = spec.title or results.title, xlabel = spec.xlabel,
             ylabel = spec.ylabel, ymin = spec.ymin, ymax = spec.ymax, logx = spec.logx}
  if spec.kind == "bars" then
    a.groups, a.series = {}, {}
    local errs, any_err = {}, false
    for _, r in ipairs(rows) do a.groups[#a.groups + 1] = label_of(r[key]) end
    for i, m in ipairs(spec.metrics or {"image_auroc", "pixel_auroc", "aupro"}) do
      local vals, es = {}, {}
      for g, r in ipairs(rows) do vals[g] = r[m]; es[g] = r[m .. "_std"]; any_err = any_err or es[g] ~= nil end
      a.series[i], errs[i] = {name = m, values = vals}, es
    end
    if any_err then a.errors = errs end
    return "bars", a
  end
  local by, order, flat = {}, {}, {}
  local lo, hi = math.huge, -math.huge
  for _, r in ipairs(rows) do
    local x, y = r[spec.x], r[spec.y]
    if type(x) == "number" then
      local s = label_of(r[spec.series] or spec.y)
      if not by[s] then by[s] = {name = s, x = {}, y = {}}; order[#order + 1] = s end
      table.insert(by[s].x, x)
      table.insert(by[s].y, y or 0 / 0)
      lo, hi = math.min(lo, x), math.max(hi, x)
    elseif type(y) == "number" then
      flat[#flat + 1] = {name = label_of(r[key]), y = y}
    end
  end
  a.series = {}
  for _, s in ipairs(order) do a.series[#a.series + 1] = by[s] end
  for _, f in ipairs(flat) do
    if lo <= hi then a.series[#a.series + 1] = {name = f.name, x = {lo, hi}, y = {f.y, f.y}, dashed = true} end
  end
  return "lines", a
end

--- Draws the plots of results (or one extra spec) into results.dir/plots; returns the paths written. A missing
-- gnuplot or a failed plot is a warning: the tables are written regardless.
function M.replot(results, spec)
  local specs = spec and {spec} or results.plots or {}
  if spec then results.plots[#results.plots + 1] = spec end
  if #specs == 0 then return {} end
  local dir = rundir.mkdir(results.dir .. "/plots")
  local written = {}
  for _, s in ipairs(specs) do
    local ok, err = pcall(function()
      local kind, args = M.plot_args(results, s, dir)
      return plot[kind](args)
    end)
    if ok then written[#written + 1] = err
    else
      io.stderr:write("warning: ", clean(err), "\n")
      if not plot.available() then break end
    end
  end
  return written
end

-- ------------------------------------------------------------------ running

-- The default run of a recipe without run(): one RealNet variant with the train section (and the baseline).
local function default_run(cfg, ctx)
  return {columns = {"variant", "image_auroc", "pixel_auroc", "aupro", "f1_max", "seconds"},
          rows = E.sweep(ctx, {{name = "realnet", set = {}}}),
          plots = {{kind = "bars", file = "metrics.png", ylabel = "score"}}}
end

local function check_result(res, name)
  if type(res) ~= "table" or type(res.rows) ~= "table" then
    error(("recipe %s: run(cfg, ctx) must return a table with rows (a list of row tables)"):format(name), 0)
  end
  res.key = res.key or "variant"
  if not res.columns then
    res.columns = {res.key, "image_auroc", "pixel_auroc", "aupro", "f1_max", "seconds"}
  end
  if not res.metrics then
    res.metrics = {}
    for _, c in ipairs(M.METRICS) do res.metrics[#res.metrics + 1] = c end
  end
  return res
end

local function fresh_dir(name)
  local base = ("runs/%s-%s"):format(name, os.date("%Y%m%d-%H%M%S"))
  local dir, k = base, 1
  while require("realnet.core").file_type(dir) do k = k + 1; dir = base .. "-" .. k end
  return dir
end

--- Writes table.md, table.csv, metrics.json and the plots of results into results.dir.
function M.write_outputs(results, opts)
  opts = opts or {}
  local tbl = {title = results.title, columns = results.columns, rows = results.rows, notes = results.notes}
  local md, csv = report.write(results.dir, "table", tbl)
  local json_rows = {}
  for i, r in ipairs(results.rows) do
    local row = {}
    for k, v in pairs(r) do row[k] = v end
    json_rows[i] = row
  end
  local doc = {recipe = results.name, title = results.title, scale = results.scale, preset = results.preset,
    seeds = results.seeds, key = results.key, columns = results.columns, metrics = results.metrics,
    rows = json_rows, notes = json.array(results.notes or {}), seconds = results.seconds}
  if #results.seeds > 1 then doc.per_seed = results.per_seed end
  rundir.write_atomic(results.dir .. "/metrics.json", json.encode(doc, {indent = 2,
    order = {"recipe", "title", "scale", "preset", "seeds", "key", "columns", "metrics", "rows"}}) .. "\n")
  results.files = {md, csv, results.dir .. "/metrics.json"}
  if opts.plots ~= false then
    for _, p in ipairs(M.replot(results)) do results.files[#results.files + 1] = p end
  end
  return results.files
end

--- execute(recipe, cfg, info, opts{out, repeat = 1, plots = true}) -> results {name, title, scale, dir, cfg,
-- seeds, key, columns, metrics, rows (mean with <col>_std over seeds when repeat > 1), per_seed, plots, files}.
function M.execute(recipe, cfg, info, opts)
  opts = opts or {}
  local reps = opts["repeat"] or 1
  local name = info.name
  local t0 = require("realnet.core").now()
  local run <close> = rundir.create{dir = opts.out or fresh_dir(name)}
  run:save_config(cfg)
  print(("recipe %s: %s scale (preset %s)%s, run directory %s"):format(name, tostring(info.scale), info.preset,
    reps > 1 and (", %d seeds"):format(reps) or "", run.dir))
  local base_seed = math.tointeger(cfg.seed) or 100
  local per, data_root = {}, nil
  local seeds = {}
  for i = 1, reps do
    local seed = base_seed + i - 1
    seeds[i] = seed
    local c = config.copy(cfg)
    c.seed = seed
    local ctx = {cfg = c, root_dir = run.dir, dir = reps > 1 and run:subdir("seed-" .. seed) or run.dir, seed = seed,
                 scale = info.scale, name = name, run = run,
                 seed_label = reps > 1 and (" (seed %d, run %d/%d)"):format(seed, i, reps) or ""}
    data_root = data_root or (c.data and E.prepare_data(c, ctx))
    ctx.data_root = data_root
    local res = check_result((recipe.run or default_run)(c, ctx), name)
    per[i] = res
    if reps > 1 then -- each seed's own table and metrics.json (realnet compare reads them too)
      report.write(ctx.dir, "table", {title = ("%s (seed %d)"):format(res.title or recipe.title or name, seed),
                                      columns = res.columns, rows = res.rows, notes = res.notes})
      rundir.write_atomic(ctx.dir .. "/metrics.json", json.encode({recipe = name, scale = info.scale, seeds = {seed},
        key = res.key, columns = res.columns, metrics = res.metrics, rows = res.rows}, {indent = 2}) .. "\n")
    end
  end
  local first = per[1]
  local rows = first.rows
  if reps > 1 then
    local lists = {}
    for i, r in ipairs(per) do lists[i] = r.rows end
    rows = report.aggregate(lists, first.key, first.metrics)
  end
  local results = {name = name, title = first.title or recipe.title or name, scale = info.scale, preset = info.preset,
    dir = run.dir, cfg = cfg, seeds = seeds, key = first.key, columns = first.columns, metrics = first.metrics,
    rows = rows, notes = first.notes or {}, plots = first.plots or {}, per_seed = {}}
  if reps > 1 then
    results.notes[#results.notes + 1] = ("mean ± standard deviation over %d seeds (%s)"):format(reps,
      table.concat(seeds, ", "))
    for i, r in ipairs(per) do results.per_seed[i] = {seed = seeds[i], rows = r.rows} end
  end
  results.seconds = require("realnet.core").now() - t0
  M.write_outputs(results, opts)
  print("\n" .. report.markdown({title = results.title, columns = results.columns, rows = results.rows,
                                 notes = results.notes}))
  print(("recipe %s done in %s; wrote %s"):format(name, require("realnet.progress").hms(results.seconds),
    table.concat(results.files, ", ")))
  return results
end

-- ------------------------------------------------------------------ comparison

--- Comparison of run directories (`realnet compare`): dirs, opts{metrics} -> a report.compare table. Each
-- evaluated run (metrics.json of `realnet eval`) is one entry; a recipe run contributes one entry per row.
function M.compare(dirs, opts)
  opts = opts or {}
  local entries = {}
  for _, d in ipairs(dirs) do
    for _, e in ipairs(report.load_run(d)) do entries[#entries + 1] = e end
  end
  if #entries == 0 then error("compare: nothing to compare", 0) end
  local metrics = opts.metrics
  if not metrics then
    metrics = {}
    for _, m in ipairs{"image_auroc", "pixel_auroc", "aupro", "f1_max"} do
      for _, e in ipairs(entries) do
        if type(e.metrics[m]) == "number" then metrics[#metrics + 1] = m; break end
      end
    end
  end
  local tbl = report.compare(entries, metrics)
  tbl.title = ("compared with %s"):format(entries[1].label)
  return tbl
end

-- ------------------------------------------------------------------ command line

local OPTIONS = {
  {"--scale", metavar = "NAME", help = "smoke (tests, < 2 min), cpu (2 cores, magnetic_tile), paper (GPU)"},
  {"--repeat", type = "int", min = 1, default = 1, metavar = "N", help = "seeds seed..seed+N-1; mean ± std"},
  {"--out", type = "path", metavar = "RUNDIR", help = "run directory (default runs/<recipe>-<timestamp>)"},
  {"--seed", type = "int", min = 0, help = "first seed (the recipe's seed field)"},
  {"--weights", type = "path", help = "backbone weights (train.model.backbone.weights)"},
  {"--data", type = "path", metavar = "DIR", help = "dataset root (data.root)"},
  {"--category", metavar = "NAME", help = "dataset category (data.category)"},
  {"--epochs", type = "int", min = 1, help = "training epochs of every variant (train.trainer.epochs)"},
  {"--print-config", type = "flag", help = "print the resolved config (every settable key) and exit"},
  {"--no-plots", type = "flag", help = "write the tables only"},
}

-- Splits args into the runner's options and config overrides: any --name[=value] that is not an option of the
-- runner is a config key (dotted or not). Returns runner args, overrides {{key, text}}, or nil, msg.
local function split_args(args, spec)
  local known, takes = {}, {}
  for _, o in ipairs(spec.options) do
    known[o[1]] = true
    takes[o[1]] = o.type ~= "flag"
  end
  known["--help"], known["-h"] = true, true
  local mine, over, i = {}, {}, 1
  while i <= #args do
    local a = args[i]
    local head, inline = a:match("^(%-%-?[^=]+)=(.*)$")
    head = head or a
    if known[head] then
      mine[#mine + 1] = a
      if takes[head] and inline == nil and args[i + 1] ~= nil then mine[#mine + 1] = args[i + 1]; i = i + 1 end
    elseif head:match("^%-%-[%a_][%w_%.]*$") then
      local text = inline
      if text == nil then
        text = args[i + 1]
        if text == nil then return nil, head .. " needs a value" end
        i = i + 1
      end
      over[#over + 1] = {head:sub(3), text}
    else
      return nil, ("unexpected argument '%s' (options are --name value or --key.sub=value)"):format(a)
    end
    i = i + 1
  end
  return mine, over
end

-- An unknown non-dotted key that looks like a mistyped runner option gets a hint.
local function hint(msg, over, spec)
  local names = {}
  for _, o in ipairs(spec.options) do names[#names + 1] = o[1]:sub(3) end
  for _, kv in ipairs(over) do
    if not kv[1]:find(".", 1, true) and msg:find("'" .. kv[1] .. "'", 1, true) then
      local _, near = cli.nearest(kv[1], names)
      if near then return ("unknown option --%s (did you mean --%s?); as a config key: %s"):format(kv[1], near, msg) end
    end
  end
  return msg
end

--- The command line of a recipe: main(recipe, path, interactive) with the global `arg`. Exits 2 on a usage error
-- (bad option, unknown scale or key) and 1 when the run fails; returns the results otherwise, and with
-- interactive = true also leaves results, replot and compare in the globals for the REPL.
function M.main(recipe, path, interactive)
  recipe._path = recipe._path or path
  local name = M.name(recipe, path)
  local scales = M.scale_names(recipe)
  local flags = {}
  for k, v in pairs(M.FLAGS) do flags[k] = v end
  for k, v in pairs(recipe.flags or {}) do flags[k] = v or nil end
  local options = {}
  for _, o in ipairs(OPTIONS) do
    local f = o[1]:sub(3)
    if M.FLAGS[f] == nil or flags[f] then options[#options + 1] = o end
  end
  local extra = {}
  for f in pairs(flags) do if M.FLAGS[f] == nil then extra[#extra + 1] = f end end
  table.sort(extra)
  for _, f in ipairs(extra) do options[#options + 1] = {"--" .. f, metavar = "VALUE", help = "sets " .. flags[f]} end
  local spec = {name = "run " .. path, usage = "[options] [--key.sub=value ...]",
    summary = (recipe.title or name) .. (recipe.description and ("\n" .. recipe.description) or ""),
    options = options, overrides = true,
    epilog = ("scales: %s (default %s)\n--key.sub=value sets any field of the config (see --print-config), e.g. "
      .. "--train.trainer.epochs=3\nexit status: 0 done, 1 error, 2 usage error"):format(
      #scales > 0 and table.concat(scales, ", ") or "none", recipe.default_scale or (recipe.scales and
      recipe.scales.smoke and "smoke") or "none")}
  local args = {}
  for i = 1, #(arg or {}) do args[i] = arg[i] end
  local mine, over = split_args(args, spec)
  if not mine then cli.usage_error(spec, over) end
  local o, msg = cli.try_parse(mine, spec)
  if not o then
    if msg == "help" then io.stdout:write(cli.help(spec), "\n"); os.exit(0) end
    cli.usage_error(spec, msg)
  end
  local list = {}
  if o.seed then list[#list + 1] = {"seed", tostring(o.seed)} end
  local fnames = {}
  for f in pairs(flags) do fnames[#fnames + 1] = f end
  table.sort(fnames)
  for _, f in ipairs(fnames) do
    local v = o[f:gsub("%-", "_")]
    if v ~= nil then list[#list + 1] = {flags[f], tostring(v)} end
  end
  for _, kv in ipairs(over) do list[#list + 1] = kv end
  local ok, cfg, info = pcall(M.resolve, recipe, {scale = o.scale, overrides = list})
  if not ok then cli.usage_error(spec, hint(clean(cfg), over, spec)) end
  if o.print_config then io.stdout:write(config.dump(cfg)); os.exit(0) end
  local rok, results = pcall(M.execute, recipe, cfg, info, {out = o.out, ["repeat"] = o["repeat"],
                                                            plots = not o.no_plots})
  if not rok then
    io.stderr:write(("realnet run %s: %s\n"):format(path, clean(results)))
    if os.getenv("REALNET_DEBUG") then io.stderr:write(debug.traceback(), "\n") end
    os.exit(1)
  end
  if interactive then
    _G.results = results
    _G.replot = function(spec_) return M.replot(results, spec_) end
    _G.compare = function(...)
      local dirs = {...}
      if #dirs == 0 then dirs = {results.dir} end
      local t = M.compare(dirs)
      print(t.markdown())
      return t
    end
    print("REPL: results (rows, dir, cfg, ...), replot([plot spec]) redraws into results.dir/plots, "
      .. "compare([RUNDIR...]) tabulates runs with deltas")
  end
  return results
end

return M
