-- Where a trained RealNet loses image AUROC: its score beside its residual and kNN on its features.
-- Per defect type: the model's image score, the reconstruction residual alone, and nearest-neighbour distance
-- on the AFS-selected features.
--
--   realnet diagnose RUNDIR [--bank-images N] [--bank-patches N] [--seed N] [--data DIR]
--
-- High knn_L beside low residual_B and disc: the selected features carry the defects and the reconstruction or
-- the discriminator loses them; low knn_L too: the backbone or the channel selection does. Prints a Markdown
-- table and writes RUNDIR/diagnose.csv. Exit status: 0 done, 1 on an error, 2 on a usage error.
local cli = require "realnet.cli"
local diagnose = require "realnet.diagnose"

local SPEC = {
  name = "diagnose",
  summary = "image AUROC of a RealNet run's score, its reconstruction residual and kNN on its selected features",
  positional = {{"rundir", metavar = "RUNDIR", required = true, missing = "no run directory given"}},
  options = {
    {"--bank-images", type = "int", min = 1, default = 256, help = "normal training images in the kNN bank"},
    {"--bank-patches", type = "int", min = 1, default = 65536,
     help = "feature rows kept per level (a seeded random subset; bounds the kNN cost)"},
    {"--seed", type = "int", min = 0, default = 0, help = "seed of the bank's subsampling"},
    {"--data", type = "path", metavar = "DIR", help = "dataset root (default: the one used for training)"},
  },
  epilog = "exit status: 0 done, 1 error, 2 usage error",
}

local o = cli.parse(arg, SPEC)
local ok, rep = pcall(diagnose.run, o.rundir, {bank_images = o.bank_images, bank_patches = o.bank_patches,
                                               seed = o.seed, data = o.data})
if not ok then
  io.stderr:write("realnet diagnose: ", tostring(rep), "\n")
  os.exit(1)
end
io.stdout:write(rep.markdown)
