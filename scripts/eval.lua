-- Evaluate a trained run on its test split: metrics.json, metrics.csv, scores.csv, TIFF maps, overlays.
--
--   realnet eval RUNDIR [--data DIR] [--select last_epoch|best_on_test] [--no-overlays] [--no-maps] [--batch N]
--
-- Image AUROC, pixel AUROC, AU-PRO (MVTec definition), RealNet's PRO variant and F1-max, with the protocol
-- flags (selection, PRO definition, resolution, seed) in metrics.json. The default selection is the last
-- epoch; best_on_test picks the checkpoint on the test set as the paper does and says so in a banner.
-- Exit status: 0 done, 1 on an error, 2 on a usage error.
local cli = require "realnet.cli"
local evaluator = require "realnet.evaluator"

local SPEC = {
  name = "eval",
  summary = "measures a run directory on the test split of its dataset",
  positional = {{"rundir", metavar = "RUNDIR", required = true, missing = "no run directory given"}},
  options = {
    {"--data", type = "path", metavar = "DIR", help = "dataset root (default: the one used for training)"},
    {"--select", type = "choice", choices = {"last_epoch", "best_on_test"}, default = "last_epoch",
     help = "model selection"},
    {"--no-overlays", type = "flag", help = "skip the PNG overlays"},
    {"--no-maps", type = "flag", help = "skip the TIFF anomaly maps"},
    {"--batch", type = "int", min = 1, default = 8},
    {"--device", metavar = "cpu|cuda[:N]", help = "where the network runs (cpu); metrics and outputs on the host"},
  },
  epilog = "exit status: 0 done, 1 error, 2 usage error",
}

local o = cli.parse(arg, SPEC)
local ok, err = pcall(evaluator.run, o.rundir, {data = o.data, select = o.select, overlays = not o.no_overlays,
                                                maps = not o.no_maps, batch = o.batch,
                                                device = o.device})
if not ok then
  io.stderr:write("realnet eval: ", tostring(err), "\n")
  os.exit(1)
end
