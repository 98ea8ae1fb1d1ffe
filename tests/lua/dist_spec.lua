-- realnet.dist and `realnet train --devices`: data-parallel training across processes. On a machine without
-- GPUs the ranks run on the host and average through files (the `files` transport); the NCCL transport is
-- checked by tests/cuda/cuda_model_spec.lua on a GPU machine.
local rn = require "realnet"
local H = require "rnhelp"
local dist = require "realnet.dist"
local trainer = require "realnet.trainer"

local BIN = os.getenv("REALNET_BIN") or "realnet"
local dir = H.tmpdir()

-- A script run by two processes at once: rank ARG[1] of 2 in the rendezvous directory ARG[2]; it writes what
-- it saw to ARG[2]/out.<rank>.lua.
local WORKER = dir .. "/worker.lua"
H.spit(WORKER, [[
local rn = require "realnet"
local dist = require "realnet.dist"
local rank, ddir, mode = tonumber(arg[1]), arg[2], arg[3]
local comm = dist.join{dir = ddir, tag = "t", rank = rank, size = 2}
local out = {}
if mode == "fail" and rank == 1 then
  dist.fail(ddir, 1, "the disk is full")
  os.exit(1)
end
local ok, err = pcall(function()
  local a = rn.tensor({{1, 2}, {3, 4}}) * (rank + 1)     -- rank 0: a, rank 1: 2a
  local b = rn.tensor({10, 20, 30}) + rank * 3
  comm:all_reduce_mean({a, b})
  out.a, out.b = a:totable(), b:totable()
  local w = rn.tensor({1, 1}):requires_grad(true)
  local opt = dist.sync_optimizer(rn.optim.sgd({w}, {lr = 1}), {w}, comm)
  opt:zero_grad()
  ;(w * rn.tensor({rank + 1, 0})):sum():backward()          -- gradients {1, 0} and {2, 0}: the mean is {1.5, 0}
  opt:step()
  out.w = w:detach():totable()
  out.all_finite = opt:all_finite(rank == 0)                 -- rank 1's loss was not finite: both skip
  out.stopped = opt.stopped
  if rank == 0 then rn.sleep(0.5) end                        -- rank 0 is late to close: rank 1 must wait for it,
  out.close_start = rn.now()                                 -- or it would delete files rank 0 may still read
  comm:close()
  out.close_end = rn.now()
end)
out.err = not ok and tostring(err) or nil
local f = assert(io.open(ddir .. "/out." .. rank .. ".lua", "w"))
f:write("return ", rn.json.encode(out))
f:close()
]])

-- Runs the worker as ranks 0 and 1 at once; returns what each wrote.
local function two_ranks(name, mode, env)
  env = "REALNET_DIST_TIMEOUT=30 " .. (env or "") -- a broken rendezvous fails the test instead of hanging it
  local ddir = dir .. "/" .. name
  dist.reset(ddir)
  local cmd = ("cd %s && (%s %s run %s 0 %s %s > %s/log0 2>&1 & %s %s run %s 1 %s %s > %s/log1 2>&1; wait)"):format(
    H.q(dir), env or "", BIN, H.q(WORKER), H.q(ddir), mode or "", H.q(ddir), env or "", BIN, H.q(WORKER),
    H.q(ddir), mode or "", H.q(ddir))
  os.execute(cmd)
  local res = {}
  for r = 0, 1 do
    local text = H.read(("%s/out.%d.lua"):format(ddir, r))
    res[r] = text and rn.json.decode(text:gsub("^return ", "")) or {err = "no output: " .. H.slurp(ddir .. "/log" .. r)}
  end
  return res
end

describe("realnet.dist", function()
  it("splits a batch between ranks: contiguous, covering it once", function()
    assert.are.same({1, 2}, {dist.shard(4, 0, 2)})
    assert.are.same({3, 4}, {dist.shard(4, 1, 2)})
    local seen = 0
    for r = 0, 2 do
      local a, b = dist.shard(8, r, 3)
      assert.are.equal(seen + 1, a)
      seen = b
    end
    assert.are.equal(8, seen)
  end)

  it("averages tensors and gradients over two processes, the same numbers on both", function()
    local res = two_ranks("avg")
    for r = 0, 1 do
      assert.is_nil(res[r].err, res[r].err)
      assert.are.same({{1.5, 3}, {4.5, 6}}, res[r].a)
      assert.are.same({11.5, 21.5, 31.5}, res[r].b)
      assert.are.same({1 - 1.5, 1}, res[r].w)    -- SGD step with the averaged gradient {1.5, 0}
      assert.is_false(res[r].all_finite)         -- rank 1 reported a non-finite loss
    end
    assert.are.equal("another rank", res[0].stopped)
    assert.are.equal("rank 1", res[1].stopped)
    -- closing waited for both ranks (the clock is the machine's monotonic one), then each removed its files
    assert.is_true(res[1].close_end >= res[0].close_start)
    assert.is_nil(table.concat(rn.listdir(dir .. "/avg"), " "):match("%.h5"))
  end)

  it("stops waiting when another rank fails, naming it and its message", function()
    local res = two_ranks("fail", "fail")
    assert.matches("rank 1 failed: the disk is full", res[0].err)
  end)

  it("gives up after REALNET_DIST_TIMEOUT when a rank never comes", function()
    local ddir = dir .. "/alone"
    dist.reset(ddir)
    local rc, out = H.sh("REALNET_DIST_TIMEOUT=0.3 " .. BIN, dir, ("-e %s"):format(H.q(
      ("require('realnet.dist').join{dir = %q, rank = 0, size = 2}"):format(ddir))))
    assert.are_not.equal(0, rc)
    assert.matches("waited", out)
    assert.matches("REALNET_DIST_TIMEOUT", out)
  end)
end)

describe("realnet train --devices", function()
  local DATA = dir .. "/demo"
  rn.demo_data.make(DATA, {seed = 1, size = 64, train = 10, test_good = 2, test_defect = 1})
  local TINY = H.TINY_TRAIN

  for _, source in ipairs{"cutpaste", "cutpaste,nsa"} do
    it("gives each rank its part of every batch with the anomalies one process would make (" .. source .. ")",
       function()
      local function one(src) return rn.synth.new{source = src, seed = 3, foreground = false, quiet = true} end
      local synth = function()
        if source == "cutpaste" then return one("cutpaste") end
        return rn.synth.mix({one("cutpaste"), one("nsa")}, {seed = 3})
      end
      local images = rn.randn({6, 3, 32, 32}, {seed = 5})
      local whole = synth()
      local A, I, Mk = trainer.make_triplet(images, whole, rn.generator(1, 2), 0.3)
      local s = synth()
      local parts = {}
      for r = 0, 2 do
        s.count = 0 -- every rank's synthesiser starts where the one process's did
        parts[r + 1] = {trainer.make_triplet(images, s, rn.generator(1, 2), 0.3, {dist.shard(6, r, 3)})}
      end
      local cat = function(k) return rn.cat({parts[1][k], parts[2][k], parts[3][k]}, 1) end
      assert.are.equal(0, H.maxdiff(A, cat(1)))
      assert.are.equal(0, H.maxdiff(I, cat(2)))
      assert.are.equal(0, H.maxdiff(Mk, cat(3)))
      assert.is_true(Mk:sum():item() > 0)        -- some samples were made anomalous
      assert.are.equal(whole.count, s.count)     -- and the counter moved on as in one process
    end)
  end

  it("trains on two host processes: one run directory, ranks in step, a loadable model", function()
    local rc, out = H.sh(BIN, dir, "train --data demo --category demo_surface --out runs/dp --epochs 2 "
      .. "--devices cpu,cpu " .. TINY)
    assert.are.equal(0, rc, out)
    assert.matches("data%-parallel on 2 devices %(cpu, cpu%)", out)
    assert.matches("rank 0 of 2 on cpu %(files transport%), 2 of each batch of 4", out)
    assert.matches("epoch 2/2", out)
    local log1 = H.slurp(dir .. "/runs/dp/.dist/rank1.log")
    assert.matches("rank 1 done after epoch 2", log1)           -- the weights were checked equal each epoch
    local m, attrs = rn.realnet.load(dir .. "/runs/dp/model.h5")
    assert.is_table(m)
    assert.are.equal(2, attrs.epoch)
    os.execute(("cp -r %s %s"):format(H.q(dir .. "/runs/dp"), H.q(dir .. "/runs/dp2")))
    -- a resumed run starts the other rank again and continues from the checkpoint
    rc, out = H.sh(BIN, dir, "train --out runs/dp --resume --epochs 3 --devices cpu,cpu")
    assert.are.equal(0, rc, out)
    assert.matches("resuming .- after epoch 2 of 3", out)
    assert.matches("rank 1 done after epoch 3", H.slurp(dir .. "/runs/dp/.dist/rank1.log"))
  end)

  it("runs as the ranks of an MPI job (mpirun -np 2 ... --mpi), the same run as --devices", function()
    if not os.execute("command -v mpirun > /dev/null 2>&1") then
      pending("mpirun not installed (scripts/install-deps.sh installs openmpi-bin)")
      return
    end
    local rc, out = H.sh("mpirun --allow-run-as-root --oversubscribe -np 2 " .. BIN, dir, "train --data demo "
      .. "--category demo_surface --out runs/mpi --epochs 2 --mpi --device cpu " .. TINY .. " < /dev/null")
    -- (stdin from /dev/null: mpirun forwards its stdin to rank 0 and would stop on a background job's terminal)
    assert.are.equal(0, rc, out)
    assert.matches("rank 0 of 2 MPI ranks", out)
    assert.matches("rank 1 done after epoch 2", out)
    -- the same batches, shards and averaging as two processes started by --devices: the same threshold
    local _, a = rn.realnet.load(dir .. "/runs/mpi/model.h5")
    local _, b = rn.realnet.load(dir .. "/runs/dp2/model.h5")
    assert.are.equal(b.threshold, a.threshold)
    rc, out = H.sh(BIN, dir, "train --data demo --category demo_surface --out runs/y --mpi")
    assert.are.equal(2, rc)
    assert.matches("no MPI rank in the environment", out)
  end)

  it("refuses what it cannot split, and reports a rank that dies", function()
    local rc, out = H.sh(BIN, dir, "train --data demo --category demo_surface --out runs/x --devices cpu,cpu,cpu "
      .. TINY)
    assert.are.equal(1, rc)
    assert.matches("trainer.batch %(4%) must be a multiple of the number of ranks %(3%)", out)
    rc, out = H.sh(BIN, dir, "train --data demo --category demo_surface --method patchcore --devices cpu,cpu")
    assert.are.equal(1, rc)
    assert.matches("PatchCore fits on one device", out)
    rc, out = H.sh(BIN, dir, "train --data demo --category demo_surface --devices cpu --device cpu")
    assert.are.equal(2, rc)
    assert.matches("%-%-devices replaces %-%-device", out)
    rc, out = H.sh(BIN, dir, "train --out runs/dp --rank 2/2")
    assert.are.equal(2, rc)
    assert.matches("%-%-rank must be R/N", out)
    -- the other rank's program exits at once: rank 0 says so instead of waiting for it
    local fake = dir .. "/fake-realnet"
    H.spit(fake, "#!/bin/sh\necho 'out of memory' >&2\nexit 3\n")
    os.execute("chmod +x " .. H.q(fake))
    local cfg = trainer.from_cli({data = DATA, category = "demo_surface", epochs = 1, batch = 4, image_size = 32,
      backbone = "resnet18", afs = {8, 16, 16}}, {["model.backbone.layers"] = "1,2,3", ["model.afs.batches"] = "1",
      ["model.afs.batch"] = "4"})
    local saved = _G.print
    _G.print = function() end
    local ok, err = pcall(trainer.run, cfg, {out = dir .. "/runs/dead", devices = {"cpu", "cpu"}, bin = fake})
    _G.print = saved
    assert.is_false(ok)
    assert.matches("rank 1 exited with status 3", err)
    assert.matches("out of memory", err)
    assert.matches("failed%.0", table.concat(rn.listdir(dir .. "/runs/dead/.dist"), " "))
  end)
end)
