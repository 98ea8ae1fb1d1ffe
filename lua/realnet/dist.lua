--- realnet.dist: data-parallel training, one process ("rank") per device, gradients averaged after every
-- backward pass so that every rank takes the same optimiser step.
--
--   local comm = dist.join{dir = RUNDIR .. "/.dist", tag = "magnetic_tile", rank = r, size = n, device = dev}
--   local opt = dist.sync_optimizer(adam, params, comm)   -- step() averages the gradients first
--   comm:all_reduce_mean({t1, t2})                        -- in place, the same result on every rank
--   comm:close()
--
-- Two transports behind one interface:
--   nccl   CUDA devices: rank 0 writes an NCCL id to DIR/TAG.nccl_id, the others read it and join
--          (core.nccl); the averaging runs on the GPUs. Needs a CUDA build with NCCL.
--   files  host tensors: every rank writes its tensors to DIR/TAG.<call>.<rank>.h5 and reads the others', and
--          sums them in rank order, so every rank holds bit-identical results. Slow (a file per call) but
--          needs nothing: it is how `--devices cpu,cpu` checks the multi-process path without GPUs.
-- A rank that fails writes DIR/failed.<rank> (dist.fail); a waiting rank sees it, or a dead parent
-- (REALNET_DIST_PARENT, a pid), or its timeout (REALNET_DIST_TIMEOUT seconds, default 1800), and raises
-- instead of hanging. NCCL itself cannot see a dead peer: a rank killed mid-step leaves the others waiting.
local core = require "realnet.core"
local h5 = require "realnet.h5"
local rundir = require "realnet.rundir"

local M = {}

local POLL = 0.005 -- seconds between looks at the rendezvous directory, doubled up to 0.2 while waiting

--- The rendezvous directory of a run: made fresh by rank 0 before it starts the other ranks.
function M.rendezvous(run_dir) return run_dir .. "/.dist" end

--- Empties (or makes) the rendezvous directory; rank 0 calls it before starting the others.
function M.reset(dir)
  rundir.mkdir(dir)
  for _, name in ipairs(core.listdir(dir) or {}) do os.remove(dir .. "/" .. name) end
end

--- Records that this rank failed, so that the others stop waiting for it.
function M.fail(dir, rank, msg)
  pcall(rundir.write_atomic, ("%s/failed.%d"):format(dir, rank), tostring(msg) .. "\n")
end

-- Raises when another rank failed, the parent process is gone or the wait has lasted too long.
local function check_peers(self, what, t0)
  for _, name in ipairs(core.listdir(self.dir) or {}) do
    local r = name:match("^failed%.(%d+)$")
    if r and tonumber(r) ~= self.rank then
      local msg = (rundir.read_text(self.dir .. "/" .. name) or ""):gsub("%s+$", "")
      error(("rank %s failed: %s"):format(r, msg), 0)
    end
    local rc_rank = name:match("^rank(%d+)%.rc$")
    if rc_rank and tonumber(rc_rank) ~= self.rank then
      local rc = (rundir.read_text(self.dir .. "/" .. name) or ""):match("%d+")
      if rc and rc ~= "0" then
        local log = rundir.read_text(("%s/rank%s.log"):format(self.dir, rc_rank)) or ""
        error(("rank %s exited with status %s while rank %d waited for %s; its log ends:\n%s"):format(rc_rank, rc,
          self.rank, what, log:sub(-1200)), 0)
      end
    end
  end
  if self.parent and core.file_type("/proc/" .. self.parent) == nil then
    error(("rank %d: the parent process (rank 0, pid %s) is gone"):format(self.rank, self.parent), 0)
  end
  if core.now() - t0 > self.timeout then
    error(("rank %d: waited %.0f s for %s (REALNET_DIST_TIMEOUT); a rank is stuck or gone"):format(self.rank,
      core.now() - t0, what), 0)
  end
end

-- Waits until every path of the list exists.
local function wait_files(self, paths, what)
  local t0, pause = core.now(), POLL
  while true do
    local missing = false
    for _, p in ipairs(paths) do
      if core.file_type(p) ~= "file" then missing = true; break end
    end
    if not missing then return end
    check_peers(self, what, t0)
    core.sleep(pause)
    pause = math.min(pause * 2, 0.2)
  end
end

--- Waits (as `rank`, in the rendezvous directory dir) until every path exists; raises like a collective would
-- when a rank fails or the wait times out.
function M.await(dir, rank, paths, what)
  local self = {dir = dir, rank = rank, parent = rank > 0 and os.getenv("REALNET_DIST_PARENT") or nil,
                timeout = tonumber(os.getenv("REALNET_DIST_TIMEOUT") or "") or 1800}
  if self.parent == "" then self.parent = nil end
  wait_files(self, paths, what)
end

--- The ranks of a job started by an MPI launcher (OpenMPI's mpirun, MPICH's mpiexec, Slurm's srun), from their
-- environment: {rank, size, local_rank, job} or nil, reason. `job` names the launch, so that each job meets
-- its own ranks in a fresh rendezvous directory.
function M.launcher_env(getenv)
  getenv = getenv or os.getenv
  local function first(...)
    for _, k in ipairs{...} do
      local v = getenv(k)
      if v and v ~= "" then return v end
    end
  end
  local rank = first("OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID")
  local size = first("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS")
  if not rank or not size then
    return nil, "no MPI rank in the environment (OMPI_COMM_WORLD_RANK / PMI_RANK / SLURM_PROCID): start it with mpirun"
  end
  local local_rank = first("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID") or "0"
  local job = first("PMIX_NAMESPACE", "OMPI_MCA_ess_base_jobid", "SLURM_JOB_ID")
  if not job then return nil, "no job id in the environment (PMIX_NAMESPACE / OMPI_MCA_ess_base_jobid / SLURM_JOB_ID)" end
  local step = getenv("SLURM_STEP_ID")
  if step and step ~= "" and job == getenv("SLURM_JOB_ID") then job = job .. "." .. step end
  local r, n = math.tointeger(tonumber(rank)), math.tointeger(tonumber(size))
  if not r or not n or r < 0 or r >= n then return nil, ("MPI rank %s of %s makes no sense"):format(rank, size) end
  return {rank = r, size = n, local_rank = math.tointeger(tonumber(local_rank)) or 0,
          job = (job:gsub("[^%w%-_.]", "_"))}
end

-- ------------------------------------------------------------------ processes

--- The devices of a `--devices LIST` option ("0,1" = cuda:0,cuda:1; "cpu,cpu" runs several processes on the
-- host), each checked; raises on an empty list or a mix of CPU and CUDA.
function M.parse_devices(list)
  local device = require "realnet.device"
  local devs = {}
  for name in tostring(list):gmatch("[^,]+") do
    name = name:match("^%s*(.-)%s*$")
    if name:match("^%d+$") then name = "cuda:" .. name end
    devs[#devs + 1] = device.resolve(name)
  end
  if #devs == 0 then error("--devices needs a list of devices, e.g. 0,1", 0) end
  local cuda = devs[1]:match("^cuda") ~= nil
  for _, d in ipairs(devs) do
    if (d:match("^cuda") ~= nil) ~= cuda then error("--devices: all CUDA devices or all cpu, not a mix", 0) end
  end
  return devs
end

local function q(x) return "'" .. tostring(x):gsub("'", "'\\''") .. "'" end

--- Starts a command (a list of words; env: a list of NAME=value) in the background, its output going to
-- base.log and its exit status to base.rc when it ends (what `train --devices` and `sdas sample --devices`
-- run per device).
function M.start(words, base, env)
  local parts = {}
  for _, e in ipairs(env or {}) do parts[#parts + 1] = e end
  for _, w in ipairs(words) do parts[#parts + 1] = q(w) end
  os.remove(base .. ".rc") -- a status left by an earlier run would end M.wait at once
  os.execute(("( %s < /dev/null > %s 2>&1; echo $? > %s ) &"):format(table.concat(parts, " "), q(base .. ".log"),
    q(base .. ".rc")))
end

--- Waits for a command M.start started: its exit status (a string) and the end of its output. timeout
-- seconds (default: no limit) ends the wait with nil.
function M.wait(base, timeout)
  local t0 = core.now()
  while core.file_type(base .. ".rc") ~= "file" do
    if timeout and core.now() - t0 > timeout then return nil, rundir.read_text(base .. ".log") or "" end
    core.sleep(0.05)
  end
  local rc = (rundir.read_text(base .. ".rc") or ""):match("%d+") or "?"
  return rc, (rundir.read_text(base .. ".log") or ""):sub(-1500)
end

-- ------------------------------------------------------------------ the files transport

local Files = {}
Files.__index = Files

function Files:path(call, rank) return ("%s/%s.%d.%d.h5"):format(self.dir, self.tag, call, rank) end

--- Averages the tensors in place over the ranks (host tensors: float32, any shape, the same list everywhere).
function Files:all_reduce_mean(tensors)
  if self.size == 1 or #tensors == 0 then return end
  self.calls = self.calls + 1
  local call = self.calls
  local flat = {}
  for i, t in ipairs(tensors) do flat[i] = t:contiguous():reshape({t:numel()}) end
  local mine = core.cat(flat, 1)
  h5.save(self:path(call, self.rank), {x = mine}) -- atomic: the others never read half a file
  local paths = {}
  for r = 0, self.size - 1 do paths[r + 1] = self:path(call, r) end
  wait_files(self, paths, ("all-reduce %d of %s"):format(call, self.tag))
  local sum
  for r = 0, self.size - 1 do -- rank order: the same sum, bit for bit, on every rank
    local x = r == self.rank and mine or assert(h5.load(paths[r + 1])).x
    if x:numel() ~= mine:numel() then
      error(("all-reduce %d: rank %d sent %d numbers, rank %d %d (the ranks disagree on the model)"):format(call, r,
        x:numel(), self.rank, mine:numel()), 0)
    end
    sum = sum and sum + x or x
  end
  local mean = sum / self.size
  local off = 1
  for i, t in ipairs(tensors) do
    local n = t:numel()
    t:copy_(mean:narrow(1, off, n):reshape(t:shape()))
    off = off + n
  end
  -- every rank has read the files of the call before last once it has written this one
  if call > 2 then os.remove(self:path(call - 2, self.rank)) end
end

--- Leaves the communicator: once every rank has said so (so all have read the last calls' files), each
-- removes its own remaining files.
function Files:close()
  if self.size == 1 or self.closed then return end
  self.closed = true
  local mark = "%s/%s.closed.%d"
  rundir.write_atomic(mark:format(self.dir, self.tag, self.rank), "")
  local paths = {}
  for r = 0, self.size - 1 do paths[r + 1] = mark:format(self.dir, self.tag, r) end
  wait_files(self, paths, "the other ranks to finish")
  for c = math.max(1, self.calls - 1), self.calls do os.remove(self:path(c, self.rank)) end
end

-- ------------------------------------------------------------------ the NCCL transport

local Nccl = {}
Nccl.__index = Nccl

function Nccl:all_reduce_mean(tensors)
  if self.size == 1 or #tensors == 0 then return end
  local list = {}
  for i, t in ipairs(tensors) do
    if not t:is_contiguous() then error(("all-reduce: tensor %d is not contiguous"):format(i), 2) end
    list[i] = t
  end
  self.comm:all_reduce_mean(list)
end

function Nccl:close()
  if self.comm then self.comm:close(); self.comm = nil end
end

-- ------------------------------------------------------------------ joining

--- join{dir, tag, rank, size, device, timeout} -> communicator {rank, size, transport, all_reduce_mean, close}.
-- Every rank calls it with the same dir, tag and size; it returns once all have joined.
function M.join(o)
  local rank, size = o.rank, o.size
  if math.type(size) ~= "integer" or size < 1 or math.type(rank) ~= "integer" or rank < 0 or rank >= size then
    error(("dist.join: rank %s of %s ranks"):format(tostring(rank), tostring(size)), 2)
  end
  local device = o.device or "cpu"
  local transport = device:match("^cuda") and "nccl" or "files"
  local self = {dir = o.dir, tag = o.tag or "train", rank = rank, size = size, device = device, calls = 0,
                transport = transport, parent = os.getenv("REALNET_DIST_PARENT"),
                timeout = tonumber(os.getenv("REALNET_DIST_TIMEOUT") or "") or o.timeout or 1800}
  if self.parent == "" then self.parent = nil end
  if rank == 0 then self.parent = nil end
  setmetatable(self, transport == "nccl" and Nccl or Files)
  if size == 1 then return self end
  rundir.mkdir(self.dir)
  -- everyone announces itself; the NCCL id travels the same way
  if transport == "nccl" then
    if not core.nccl.built() then
      error("dist: data-parallel training on CUDA devices needs NCCL, and this build has none (no nccl.h at build time)", 0)
    end
    local idfile = ("%s/%s.nccl_id"):format(self.dir, self.tag)
    if rank == 0 then rundir.write_atomic(idfile, core.nccl.unique_id()) end
    wait_files(self, {idfile}, "the NCCL id from rank 0")
    local id = rundir.read_text(idfile)
    self.comm = core.nccl.join(id, size, rank, tonumber(device:match("^cuda:(%d+)$") or "0"))
  end
  rundir.write_atomic(("%s/%s.joined.%d"):format(self.dir, self.tag, rank), "")
  local paths = {}
  for r = 0, size - 1 do paths[r + 1] = ("%s/%s.joined.%d"):format(self.dir, self.tag, r) end
  wait_files(self, paths, "the other ranks to start")
  return self
end

-- ------------------------------------------------------------------ training helpers

--- An optimiser that averages the gradients of params over the ranks before each step. It also answers
-- all_finite(ok) - whether every rank's loss was finite - so that all ranks skip a bad step together
-- (Model:train_step asks it); `stopped` then names the rank whose loss was not finite.
function M.sync_optimizer(opt, params, comm)
  local flag = {}
  local proxy = {inner = opt, comm = comm}
  function proxy.zero_grad(_) opt:zero_grad() end
  function proxy.step(_)
    local grads = {}
    for _, p in ipairs(params) do
      local g = p:grad()
      if g then grads[#grads + 1] = g end
    end
    comm:all_reduce_mean(grads)
    opt:step()
  end
  function proxy.all_finite(_, ok)
    -- the fraction of ranks whose loss was finite, on the model's device
    local dev = params[1] and core.device(params[1]) or "cpu"
    flag[1] = core.tensor({ok and 1 or 0}):to(dev)
    comm:all_reduce_mean(flag)
    local all = flag[1]:item() > 1 - 0.5 / comm.size
    if not all then proxy.stopped = ok and "another rank" or ("rank " .. comm.rank) end
    return all
  end
  return proxy
end

--- Averages the float running statistics (batch-norm buffers) of a module over the ranks: each rank saw a
-- different part of every batch.
function M.average_buffers(module, comm)
  local list = {}
  for name, t in module:named_buffers() do
    if t:dtype() == "float32" and name:match("running_") then list[#list + 1] = t end
  end
  comm:all_reduce_mean(list)
end

--- Raises unless every rank holds the same parameters and buffers (AFS indices, running statistics):
-- per-tensor sums, averaged over the ranks, must equal this rank's own.
function M.check_in_sync(module, comm, what)
  if comm.size == 1 then return end
  local sums, names = {}, {}
  for name, p in module:named_parameters() do sums[#sums + 1] = p:detach():sum():item(); names[#sums] = name end
  for name, b in module:named_buffers() do sums[#sums + 1] = b:float():sum():item(); names[#sums] = name end
  local dev = module:parameters()[1] and core.device(module:parameters()[1]) or "cpu"
  local t = {core.tensor(sums):to(dev)}
  comm:all_reduce_mean(t)
  local avg = t[1]:to("cpu"):totable()
  for i, s in ipairs(sums) do
    if math.abs(avg[i] - s) > 1e-5 * math.max(1, math.abs(s)) then
      error(("dist: the ranks' models differ at %s (%s: rank %d has sum %.9g, the mean over ranks is %.9g)")
        :format(what, names[i], comm.rank, s, avg[i]), 0)
    end
  end
end

--- The part of a batch of B samples rank r of n takes: first, last (1-based, inclusive).
function M.shard(B, rank, n)
  return (rank * B) // n + 1, ((rank + 1) * B) // n
end

return M
