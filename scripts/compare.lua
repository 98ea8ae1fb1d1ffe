-- Compare run directories: their metrics side by side, with the difference to the first run.
--
--   realnet compare RUN... [--metrics image_auroc,pixel_auroc,aupro,f1_max] [--csv FILE] [--markdown FILE]
--
-- A RUN evaluated by `realnet eval` (its metrics.json) is one row; a recipe's run directory (realnet run
-- recipes/X.lua) gives one row per line of its table, labelled RUN:variant. Prints a Markdown table; deltas to
-- the first row in parentheses (and as <metric>_delta columns in the CSV). Exit status: 0 done, 1 when a run
-- has no readable metrics.json, 2 on a usage error.
local cli = require "realnet.cli"
local recipe = require "realnet.recipe"
local rundir = require "realnet.rundir"

local SPEC = {
  name = "compare",
  summary = "tabulates the metrics of run directories (realnet eval or recipe runs) with deltas to the first",
  positional = {{"runs", metavar = "RUN", variadic = true, required = true, missing = "no run directories given"}},
  options = {
    {"--metrics", type = "list", metavar = "NAME,...", help = "metrics to show (default: those of image_auroc, "
      .. "pixel_auroc, aupro, f1_max that the runs have)"},
    {"--csv", type = "path", metavar = "FILE", help = "also write the table as CSV"},
    {"--markdown", type = "path", metavar = "FILE", help = "also write the Markdown table to a file"},
  },
  epilog = "exit status: 0 done, 1 unreadable run, 2 usage error",
}

local o = cli.parse(arg, SPEC)
local ok, tbl = pcall(recipe.compare, o.runs, {metrics = o.metrics})
if not ok then
  io.stderr:write("realnet compare: ", tostring(tbl), "\n")
  os.exit(1)
end
local md = tbl.markdown()
io.stdout:write(md)
local wok, err = pcall(function()
  if o.markdown then rundir.write_atomic(o.markdown, md) end
  if o.csv then rundir.write_csv(o.csv, tbl.csv_columns, tbl.rows) end
end)
if not wok then
  io.stderr:write("realnet compare: ", tostring(err), "\n")
  os.exit(1)
end
