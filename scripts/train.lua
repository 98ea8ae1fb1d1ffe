-- Train RealNet (or the PatchCore baseline) on a category, every category, or all categories in one model.
--
--   realnet train --data DIR --category NAME [--out RUNDIR] [--preset cpu|paper] [--epochs N] [--weights FILE]
--                 [--synth sia|dtd|cutpaste|nsa[,...] --sia DIR --dtd DIR] [--method realnet|patchcore] [--resume]
--                 [--config FILE.lua] [--devices 0,1 | --mpi] [--section.key=value ...]
--
-- Writes the run directory RUNDIR (default runs/<timestamp>): config.lua (every field), log.txt, model.h5
-- (weights, AFS indices, RRS statistics, image threshold, provenance), splits/ (the training and held-out
-- image lists) and checkpoints/. `realnet eval RUNDIR` then measures it. Exit status: 0 done, 1 on an error
-- (a NaN loss, unreadable data, ...), 2 on a usage error.
local cli = require "realnet.cli"
local config = require "realnet.config"
local trainer = require "realnet.trainer"

local SPEC = {
  name = "train",
  usage = "--data DIR --category NAME|all [options] [--section.key=value ...]",
  summary = "trains RealNet (default) or the PatchCore baseline into a run directory; defaults come from the\n" ..
            "preset (cpu: 128x128, ResNet-50 v2 stage 3; paper: the paper's settings, for a GPU).",
  options = {
    {"--data", type = "path", metavar = "DIR", help = "dataset root"},
    {"--dataset", type = "choice", choices = {"mvtec", "visa", "mpdd", "btad", "folder"}, help = "layout (mvtec)"},
    {"--category", help = "category name, or 'all'"},
    {"--unified", type = "flag", help = "with --category all: one model for all categories (DTD synthesis)"},
    {"--backbone", help = "backbone architecture (preset: resnet50v2 / wide_resnet50_2)"},
    {"--weights", type = "path", help = "backbone weights (safetensors / HDF5); without: random init"},
    {"--synth", metavar = "SRC[,SRC...]", help = "anomaly source: sia|dtd|cutpaste|nsa (cutpaste); a list mixes them",
     type = function(text)
       local ok, err = pcall(trainer.synth_sources, text)
       if not ok then return nil, err end
       return text
     end},
    {"--sia", type = "path", metavar = "DIR", help = "SDAS images (--synth sia)"},
    {"--dtd", type = "path", metavar = "DIR", help = "DTD textures (--synth dtd)"},
    {"--image-size", type = "int", min = 8, help = "input side in pixels"},
    {"--epochs", type = "int", min = 1},
    {"--batch", type = "int", min = 1},
    {"--afs", type = "list", of = "int", metavar = "A,B,C", help = "AFS channels kept per level"},
    {"--rrs-mode", type = "choice", choices = {"max", "avg", "maxavg"}},
    {"--rrs-ratio", type = "number", min = 0, max = 1},
    {"--seed", type = "int", min = 0, help = "seed of data order, synthesis, initialisation, hold-out (100)"},
    {"--out", type = "path", metavar = "RUNDIR", help = "run directory (default runs/<timestamp>)"},
    {"--config", type = "path", metavar = "FILE.lua", help = "a Lua file returning config fields"},
    {"--preset", type = "choice", choices = {"cpu", "paper"}, help = "defaults (cpu)"},
    {"--method", type = "choice", choices = {"realnet", "patchcore"}, help = "(realnet)"},
    {"--resume", type = "flag", help = "continue the run in --out from its last checkpoint"},
    {"--print-config", type = "flag", help = "print the resolved config and exit"},
    {"--device", metavar = "cpu|cuda[:N]", help = "where the network runs (cpu; trainer.device)"},
    {"--devices", metavar = "LIST", help = "data-parallel, a process per device (0,1 = cuda:0,cuda:1); splits the batch"},
    {"--rank", metavar = "R/N", help = "be rank R of N of the data-parallel run in --out (what --devices starts)"},
    {"--mpi", type = "flag", help = "be a rank of an mpirun job (cuda:<local rank>); --out on a shared filesystem"},
  },
  overrides = true,
  epilog = "dotted overrides set any config field, e.g. --trainer.lr=2e-4 --model.recon.arch=B\n" ..
           "--trainer.average=D saves the running average of the epochs' weights (decay D per epoch; cpu 0.9,\n" ..
           "paper 0 = the last epoch's weights)\n" ..
           "exit status: 0 trained, 1 error, 2 usage error",
}

local o, overrides = cli.parse(arg, SPEC)
local cfg
if o.rank then -- started by rank 0 of `--devices`: everything else comes from the run directory
  local r, n = o.rank:match("^(%d+)/(%d+)$")
  r, n = math.tointeger(tonumber(r)), math.tointeger(tonumber(n))
  if not r or n < 2 or r < 1 or r >= n then cli.usage_error(SPEC, "--rank must be R/N with 1 <= R < N, e.g. 1/2") end
  if not o.out then cli.usage_error(SPEC, "--rank needs the run directory: --out RUNDIR") end
  local ok, err = pcall(trainer.run, nil, {out = o.out, rank = r, size = n, resume = o.resume,
    device = o.device})
  if not ok then
    io.stderr:write("realnet train (rank ", r, "): ", tostring(err), "\n")
    os.exit(1)
  end
  os.exit(0)
end
local devices, mpi
if o.devices then
  if o.device then cli.usage_error(SPEC, "--devices replaces --device") end
  if o.mpi then cli.usage_error(SPEC, "--mpi takes its ranks from the launcher, not --devices") end
  devices = cli.try(SPEC, require("realnet.dist").parse_devices, o.devices)
end
if o.mpi then
  local err
  mpi, err = require("realnet.dist").launcher_env()
  if not mpi then cli.usage_error(SPEC, "--mpi: " .. err) end
  if not o.out then cli.usage_error(SPEC, "--mpi needs --out RUNDIR, the same for every rank (a shared filesystem)") end
  o.device = o.device or ("cuda:" .. mpi.local_rank)
  if mpi.rank > 0 then -- everything else comes from the run directory rank 0 writes
    local ok, err2 = pcall(trainer.run, nil, {out = o.out, mpi = mpi, resume = o.resume, device = o.device})
    if not ok then
      io.stderr:write("realnet train (rank ", mpi.rank, "): ", tostring(err2), "\n")
      os.exit(1)
    end
    os.exit(0)
  end
end
if o.resume then
  if not o.out then cli.usage_error(SPEC, "--resume needs the run directory: --out RUNDIR") end
  for k in pairs(trainer.FLAG_KEYS) do
    if o[k] ~= nil and o[k] ~= false and k ~= "epochs" and k ~= "device" then
      cli.usage_error(SPEC, ("--resume continues with the run's saved config; only --epochs may change (got --%s)")
        :format(k:gsub("_", "-")))
    end
  end
  if next(overrides) and not (overrides["trainer.epochs"] and not next(overrides, next(overrides))) then
    cli.usage_error(SPEC, "--resume continues with the run's saved config; only --epochs / --trainer.epochs may change")
  end
  local saved, err = config.load(o.out .. "/config.lua")
  if not saved then cli.usage_error(SPEC, ("--resume: %s is not a run directory (%s)"):format(o.out, err)) end
  if o.epochs then saved.trainer.epochs = o.epochs end
  if o.device then saved.trainer.device = o.device end -- a run may continue on another device
  if overrides["trainer.epochs"] then cli.try(SPEC, config.set, saved, "trainer.epochs", overrides["trainer.epochs"]) end
  cfg = saved
else
  cfg = cli.try(SPEC, trainer.from_cli, o, overrides)
  cli.try(SPEC, trainer.check, cfg)
end
if o.print_config then io.stdout:write(config.dump(cfg)); os.exit(0) end

local ok, err = pcall(trainer.run, cfg, {out = o.out, resume = o.resume, devices = devices, mpi = mpi})
if not ok then
  io.stderr:write("realnet train: ", tostring(err), "\n")
  if os.getenv("REALNET_DEBUG") then io.stderr:write(debug.traceback(), "\n") end
  os.exit(1)
end
