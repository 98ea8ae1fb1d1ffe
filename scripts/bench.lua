-- Benchmarks: `realnet bench conv|backbone|data|realnet ...` — conv layers vs sgemm, backbone img/s (with --peer: PyTorch), data loading + synthesis img/s, RealNet inference img/s (--device cuda on a GPU).
local rn = require "realnet"

local function usage(msg)
  if msg then io.stderr:write("realnet bench: ", msg, "\n") end
  io.stderr:write("usage: realnet bench conv [--batch N] [--res N] [--quick]\n",
                  "  prints GFLOP/s per convolution shape of WideResNet-50-2 and the total as a fraction of sgemm\n")
  os.exit(msg and 1 or 0)
end

-- Options of a bench subcommand into o (which holds the defaults): spec.flags (set true), spec.values (take the
-- next argument), spec.ints / spec.nums (positive integers / numbers >= 0). usage(msg) reports errors.
local function parse_options(args, o, spec, usage)
  local kind = {}
  for _, group in ipairs{"flags", "values", "ints", "nums"} do
    for _, name in ipairs(spec[group] or {}) do kind["--" .. name] = group end
  end
  local i = 2
  while i <= #args do
    local a, k = args[i], kind[args[i]]
    if k == "flags" then
      o[a:sub(3)] = true
    elseif k == "values" then
      o[a:sub(3)] = args[i + 1] or usage(a .. " needs a value")
      i = i + 1
    elseif k then
      local v = tonumber(args[i + 1])
      if k == "ints" then v = math.tointeger(v) end
      if not v or v < (k == "nums" and 0 or 1) then usage(a .. " needs a positive number") end
      o[a:sub(3)] = v
      i = i + 1
    elseif a == "-h" or a == "--help" then
      usage()
    else
      usage("unknown option " .. a)
    end
    i = i + 1
  end
  return o
end

local function parse(args)
  return parse_options(args, {batch = 8, res = 256, quick = false}, {flags = {"quick"}, ints = {"batch", "res"}}, usage)
end

local function bench_conv(opts)
  local ok, rows, sgemm, s = pcall(rn.bench_conv, opts)
  if not ok then usage(tostring(rows)) end
  print(string.format("WideResNet-50-2 convolutions, batch %d, %dx%d input, %d threads, %s convolution",
                      opts.batch, opts.res, opts.res, s.threads, s.conv_impl))
  print(string.format("%-34s %5s %9s %10s", "shape (in -> out, kernel/stride, input)", "count", "GFLOP", "GFLOP/s"))
  for _, r in ipairs(rows) do
    local shape = string.format("%4d -> %4d  %dx%d/%d  %3dx%-3d", r.in_ch, r.out_ch, r.kernel, r.kernel, r.stride,
                                r.in_h, r.in_w)
    print(string.format("%-34s %5d %9.2f %10.1f", shape, r.count, r.gflop, r.gflops))
  end
  print(string.format("sgemm 2048^3: %.1f GFLOP/s (OpenBLAS %.1f, oneDNN %.1f)", sgemm, s.openblas_gflops,
                      s.onednn_sgemm_gflops))
  print(string.format("total: conv layers %.1f GFLOP/s (time-weighted, %.3f s per forward) = %.0f%% of sgemm",
                      s.conv_gflops, s.total_seconds, 100 * s.conv_gflops / sgemm))
end

-- `realnet bench backbone --arch NAME [--batch 8] [--res 256] [--threads N] [--seconds 5] [--peer]`: images per
-- second of a backbone's feature extraction (every stage, random weights), after one warm-up forward, timed for
-- at least --seconds and 3 forwards. --peer also runs ../shared/bench/torch_peer.py (PyTorch on the same
-- machine, same threads) in this run and prints the ratio.
local function backbone_usage(msg)
  if msg then io.stderr:write("realnet bench backbone: ", msg, "\n") end
  io.stderr:write("usage: realnet bench backbone --arch NAME [--batch N] [--res N] [--threads N] [--seconds S] ",
                  "[--peer]\n  prints images per second (img/s); --peer runs torch_peer.py too and prints the ratio\n")
  os.exit(msg and 1 or 0)
end

local function parse_backbone(args)
  return parse_options(args, {arch = "wide_resnet50_2", batch = 8, res = 256, seconds = 5, peer = false},
                       {flags = {"peer"}, values = {"arch"}, ints = {"batch", "res", "threads"}, nums = {"seconds"}},
                       backbone_usage)
end

-- The peer script: $REALNET_SHARED/bench/torch_peer.py, else ../shared beside the source tree.
local function peer_script()
  local shared = os.getenv("REALNET_SHARED")
  if not shared or shared == "" then shared = (rn.home or ".") .. "/../shared" end
  local path = shared .. "/bench/torch_peer.py"
  if rn.file_type(path) ~= "file" then return nil, "cannot find " .. path .. " (set REALNET_SHARED)" end
  return path
end

-- torchvision's name of an engine arch where they differ: resnet50v2 is ResNet-50 with the v2 weights, the same
-- network (the peer's weights are random: only the speed counts)
local peer_arch = {resnet50v2 = "resnet50"}

local function run_peer(o, threads)
  local script, err = peer_script()
  if not script then return nil, err end
  if not os.execute("command -v python3 >/dev/null 2>&1") then return nil, "python3 is not installed" end
  local q = function(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
  local cmd = table.concat({"python3", q(script), q(peer_arch[o.arch] or o.arch), o.batch, o.res, threads}, " ")
    .. " 2>&1"
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  local ips = tonumber(out:match("img_per_s=([%d%.eE+-]+)"))
  if not ips then return nil, "torch_peer.py printed no img_per_s:\n" .. out end
  return ips, out:match("(peer [^\n]*)")
end

local function bench_backbone(o)
  if o.threads then rn.set_num_threads(o.threads) end
  local threads = rn.get_num_threads()
  local ok, bb = pcall(rn.backbone, o.arch, {seed = 1})
  if not ok then backbone_usage(tostring(bb)) end
  local x = rn.randn({o.batch, 3, o.res, o.res}, {seed = 1})
  local function once()
    local ok2, feats = pcall(bb.forward, bb, x)
    if not ok2 then backbone_usage(tostring(feats)) end
    for _, t in ipairs(feats) do t:free() end
  end
  once() -- warm-up: draws the random weights, sizes the caches
  local n, t0 = 0, rn.now()
  repeat
    once()
    n = n + 1
  until n >= 3 and rn.now() - t0 >= o.seconds
  local dt = (rn.now() - t0) / n
  local ips = o.batch / dt
  print(string.format("realnet %s batch=%d res=%d threads=%d: %.3f img/s (%.4f s per batch, %d batches)", o.arch,
                      o.batch, o.res, threads, ips, dt, n))
  bb:free()
  if not o.peer then return end
  local pips, line = run_peer(o, threads)
  if not pips then
    io.stderr:write("realnet bench backbone: peer failed: ", line, "\n")
    os.exit(1)
  end
  print(line)
  print(string.format("ratio realnet/pytorch: %.2fx (%.3f vs %.3f img/s)", ips / pips, ips, pips))
end

-- `realnet bench data [--data DIR --category NAME] [--batch 16] [--size 256] [--workers N] [--source dtd|cutpaste|nsa]
-- [--dtd DIR] [--seconds 2] [--seed 0]`: images per second of the training input pipeline on the train split:
-- loading (ds:batches with N worker threads), synthesis (synth:batch: decode on the calling thread + anomaly
-- synthesis) and both together (loader batches fed to synth:apply). Without --data a demo set (rn.demo_data)
-- is generated in a temporary directory first and removed afterwards. Each figure is timed over whole batches
-- for at least --seconds (one pass at least).
local DATA_USAGE = [[
usage: realnet bench data [--data DIR --category NAME] [--batch N] [--size N] [--workers N]
                          [--source dtd|cutpaste|nsa] [--dtd DIR] [--seconds S] [--seed N]
  prints loading and synthesis throughput (img/s) on the train split with the worker count used;
  without --data it generates the demo dataset in a temporary directory (defaults: batch 16, size 256)]]

local function data_usage(msg)
  if msg then
    io.stderr:write("realnet bench data: ", msg, "\n", DATA_USAGE, "\n")
    os.exit(1)
  end
  io.stdout:write(DATA_USAGE, "\n")
  os.exit(0)
end

local function parse_data(args)
  local o = {batch = 16, size = 256, seconds = 2, seed = 0}
  local valued = {["--data"] = "data", ["--category"] = "category", ["--batch"] = "batch", ["--size"] = "size",
                  ["--workers"] = "workers", ["--source"] = "source", ["--dtd"] = "dtd", ["--seconds"] = "seconds",
                  ["--seed"] = "seed"}
  local numeric = {batch = 1, size = 32, workers = 0, seconds = 0, seed = 0} -- the smallest value allowed
  local i = 2
  while i <= #args do
    local a = args[i]
    local key, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    key = key or a
    if a == "-h" or a == "--help" then
      data_usage()
    elseif valued[key] then
      local v = inline
      if not v then i = i + 1; v = args[i] end
      if not v or v == "" then data_usage(key .. " needs a value") end
      local name = valued[key]
      if numeric[name] then
        local n = tonumber(v)
        if name ~= "seconds" then n = math.tointeger(n) end
        if not n or n < numeric[name] then
          data_usage(("%s needs %s >= %s"):format(key, name == "seconds" and "a number" or "an integer",
                                                  numeric[name]))
        end
        v = n
      end
      o[name] = v
    else
      data_usage("unknown option " .. a)
    end
    i = i + 1
  end
  if o.data and not o.category then data_usage("--data needs --category NAME (the category directory)") end
  if o.category and not o.data then data_usage("--category needs --data DIR") end
  if o.source and o.source ~= "dtd" and o.source ~= "cutpaste" and o.source ~= "nsa" then
    data_usage("--source must be dtd, cutpaste or nsa, not '" .. o.source .. "'")
  end
  return o
end

-- The DTD folder: --dtd, else the shared subset ($REALNET_SHARED or ../shared beside the tree), else nil.
local function find_dtd(o)
  if o.dtd then
    if rn.file_type(o.dtd) ~= "directory" then data_usage("--dtd " .. o.dtd .. " is not a directory") end
    return o.dtd
  end
  local shared = os.getenv("REALNET_SHARED")
  if not shared or shared == "" then shared = (rn.home or ".") .. "/../shared" end
  local dir = shared .. "/data/dtd_subset"
  return rn.file_type(dir) == "directory" and dir or nil
end

-- Removes a directory tree made by this script (plain files and directories only).
local function remove_tree(path)
  if rn.file_type(path) == "directory" then
    for _, name in ipairs(rn.listdir(path) or {}) do remove_tree(path .. "/" .. name) end
  end
  os.remove(path)
end

-- Runs step() (which returns the images it handled) until `seconds` passed and `min_calls` were made.
local function timed(seconds, min_calls, step)
  local n, calls, t0 = 0, 0, rn.now()
  repeat
    n = n + step()
    calls = calls + 1
  until calls >= min_calls and rn.now() - t0 >= seconds
  local dt = rn.now() - t0
  return n / dt, n, dt
end

local function bench_data(o)
  local root, category, tmp = o.data, o.category, nil
  local made = ""
  if not root then
    tmp = os.tmpname()
    os.remove(tmp)
    local t0 = rn.now()
    local ok, dir = pcall(rn.demo_data.make, tmp, {seed = o.seed, size = o.size})
    if not ok then data_usage(tostring(dir)) end
    root, category = tmp, "demo_surface"
    made = (" (demo set generated in %.2f s)"):format(rn.now() - t0)
  end
  local ok, err = pcall(function()
    local ds <close> = rn.data.mvtec(root, category, {split = "train", size = o.size})
    local workers = o.workers or rn.data.default_workers()
    local dtd = find_dtd(o)
    local source = o.source or (dtd and "dtd" or "cutpaste")
    if source == "dtd" and not dtd then
      error("--source dtd needs --dtd DIR (no shared dtd_subset found)", 0)
    end
    local synth <close> = rn.synth.new{source = source, dir = dtd, category = category, seed = o.seed, quiet = true}
    print(("data %s/%s%s: %d train images, %dx%d, batch %d, workers %d, %d threads, source %s"):format(
      root, category, made, #ds, o.size, o.size, o.batch, workers, rn.get_num_threads(), source))
    local nb = (#ds + o.batch - 1) // o.batch
    -- loading: whole epochs through the worker threads
    local epoch = 0
    local load_ips, ln, lt = timed(o.seconds, 1, function()
      local n = 0
      epoch = epoch + 1
      for b in ds:batches{batch = o.batch, shuffle = true, seed = o.seed, epoch = epoch, workers = workers} do
        n = n + b.size
      end
      return n
    end)
    print(("load        %9.1f img/s  (%d images in %.2f s: ds:batches, %d batches per epoch, %d workers)"):format(
      load_ips, ln, lt, nb, workers))
    -- synthesis: synth:batch decodes its items on the calling thread, then synthesises
    local syn_ips, sn, st = timed(o.seconds, 1, function()
      local A, I, M = synth:batch(ds, o.batch)
      A:free(); I:free(); M:free()
      return o.batch
    end)
    print(("synth       %9.1f img/s  (%d images in %.2f s: synth:batch, decode + %s synthesis)"):format(
      syn_ips, sn, st, source))
    -- both: the loader's batches (uint8 again) through the synthesiser, as a training step consumes them
    local sc = rn.synth.core
    local both_ips, bn, bt = timed(o.seconds, 1, function()
      local n = 0
      epoch = epoch + 1
      for b in ds:batches{batch = o.batch, shuffle = true, seed = o.seed, epoch = epoch, workers = workers} do
        local I8 = sc.from_chw(b.images, "imagenet")
        local others = nil
        if source == "nsa" then -- partner of item i: item i+1 of the batch (another normal image)
          others = b.size > 1 and rn.cat({I8:narrow(1, 2, b.size - 1), I8:narrow(1, 1, 1)}, 1) or I8:clone()
        end
        local A, M = synth:apply(I8, others)
        A:free(); M:free(); I8:free()
        if others then others:free() end
        n = n + b.size
      end
      return n
    end)
    print(("load+synth  %9.1f img/s  (%d images in %.2f s: ds:batches -> synth:apply, %d workers)"):format(
      both_ips, bn, bt, workers))
  end)
  if tmp then remove_tree(tmp) end
  if not ok then
    io.stderr:write("realnet bench data: ", tostring(err), "\n")
    os.exit(1)
  end
end

-- `realnet bench realnet [--preset paper|cpu] [--res N] [--batch N] [--device cpu|cuda[:N]] [--tf32] [--bf16]
-- [--seconds S] [--threads N] [--lanes N]`: images per second of RealNet inference as `realnet predict` runs it
-- (backbone -> AFS -> recon U-Nets -> residuals -> RRS -> discriminator -> anomaly map and image score), with
-- random weights (the speed does not depend on them). Images start on the device and the scores come back to the host, which
-- waits for the device; timing covers whole batches after 3 warm-up batches (the first ones pick cuDNN
-- algorithms). The first warm-up batch's kernel calls are printed (op by op only: a graph replay makes none).
local REALNET_USAGE = [==[
usage: realnet bench realnet [--preset paper|cpu] [--res N] [--batch N] [--device cpu|cuda[:N]] [--tf32]
                             [--bf16] [--seconds S] [--threads N] [--profile] [--graph] [--lanes N]
  prints RealNet inference throughput (img/s) with random weights; the paper preset is WideResNet-50-2,
  layers 1-4, AFS dims 256/512/512/256 at 256x256 (defaults: paper, batch 32, the preset's image size,
  cuda when a GPU is usable else cpu, 5 s); --profile also prints the time per module class and step
  (each step waits for the device, so the profiled total is above the timed one); --graph records the
  forward once as a CUDA graph and times its replays (one launch per batch); --lanes N (GPU, 2 .. 8) runs
  the blocks' reconstruction U-Nets side by side on N streams (default: REALNET_CUDA_LANES, else 1: none);
  --tf32 (GPU) TF32 tensor cores, --bf16 (GPU) bfloat16 autocast of convolutions and products]==]

local function realnet_usage(msg)
  if msg then
    io.stderr:write("realnet bench realnet: ", msg, "\n", REALNET_USAGE, "\n")
    os.exit(1)
  end
  io.stdout:write(REALNET_USAGE, "\n")
  os.exit(0)
end

local function parse_realnet(args)
  local o = parse_options(args, {preset = "paper", batch = 32, seconds = 5, tf32 = false, bf16 = false, profile = false,
                                 graph = false},
                          {flags = {"tf32", "bf16", "profile", "graph"}, values = {"preset", "device"},
                           ints = {"batch", "res", "threads", "lanes"}, nums = {"seconds"}}, realnet_usage)
  if o.device == nil then o.device = rn.cuda.available() and "cuda" or "cpu" end
  if o.lanes and (o.lanes < 1 or o.lanes > 8) then realnet_usage("--lanes must be 1 .. 8") end
  return o
end

local function bench_realnet(o)
  local device = require "realnet.device"
  if o.threads then rn.set_num_threads(o.threads) end
  local ok, dev = pcall(device.resolve, o.device)
  if not ok then realnet_usage(tostring(dev)) end
  local on_gpu = dev ~= "cpu"
  if not on_gpu then -- before the model is built: the paper preset takes a while
    for _, f in ipairs{"tf32", "bf16", "graph"} do
      if o[f] then realnet_usage(("--%s needs --device cuda"):format(f)) end
    end
    if (o.lanes or 1) > 1 then realnet_usage("--lanes needs --device cuda") end
  else
    rn.cuda.set_tf32(o.tf32)
    rn.cuda.set_bf16(o.bf16)
    if o.lanes then rn.cuda.set_lanes(o.lanes) end
  end
  local cfg = {preset = o.preset, image_size = o.res}
  local okm, model = pcall(rn.realnet.new, cfg)
  if not okm then realnet_usage(tostring(model)) end
  model = device.model(model, dev)
  local S = model.cfg.image_size
  local x = device.to(rn.randn({o.batch, 3, S, S}, {seed = 1}), dev)
  local runner = o.graph and model:graph(x) or nil
  local function once()
    if runner then
      local _, scores = runner:run()
      device.host(scores):free() -- waits for the device
      return
    end
    local maps, scores = model:forward(x)
    local host = device.host(scores) -- waits for the device
    maps:free(); scores:free()
    if host ~= scores then host:free() end
  end
  local t_warm = rn.now()
  local calls0 = rn.kernel_calls()
  once()
  local calls = rn.kernel_calls() - calls0
  for _ = 1, 2 do once() end
  t_warm = rn.now() - t_warm
  local gc0 = rn.gc_stats()
  local n, t0 = 0, rn.now()
  repeat
    once()
    n = n + 1
  until n >= 3 and rn.now() - t0 >= o.seconds
  local dt = (rn.now() - t0) / n
  local gc1 = rn.gc_stats()
  print(("garbage collection per batch: %.1f full collections, %.2f ms"):format((gc1.full - gc0.full) / n,
    (gc1.seconds - gc0.seconds) / n * 1e3))
  if not runner then print(("kernel calls per batch: %d"):format(calls)) end
  if o.bf16 then
    print(("bfloat16 autocast: %d convolution calls so far ran in float32 (no bfloat16 algorithm for the shape)")
      :format(rn.cuda.bf16_fallbacks()))
  end
  local where = on_gpu and ("%s (%s)"):format(dev, rn.cuda.device_name(dev)) or
    ("cpu (%d threads)"):format(rn.get_num_threads())
  -- where the time goes: the backbone alone, backbone + AFS + alignment, and the whole forward, each waited for
  local function stage_ms(fn)
    local k, t = 0, rn.now()
    repeat
      local out = fn()
      if on_gpu then rn.cuda.synchronize(dev) end
      out = nil
      k = k + 1
    until k >= 3 and rn.now() - t >= math.min(1, o.seconds)
    return (rn.now() - t) / k * 1e3
  end
  if not runner then
    local t_bb = stage_ms(function() return model:extract(x) end)
    local t_blocks = stage_ms(function() return model:block_features(x) end)
    print(("stages (ms per batch): backbone %.2f, AFS + alignment %.2f, reconstruction + RRS + discriminator + "
      .. "score %.2f"):format(t_bb, t_blocks - t_bb, dt * 1e3 - t_blocks))
  end
  if o.profile and not runner then
    local profile = require "realnet.profile"
    local Model = getmetatable(model)
    local fns = {{Model, "extract", "backbone"}, {Model, "align", "AFS alignment"}}
    local smt = getmetatable(model.selector)
    if smt and type(smt.__index) == "table" then fns[#fns + 1] = {smt.__index, "forward", "RRS selection"} end
    for _, f in ipairs{"cat", "upsample", "silu", "group_norm_silu", "relu", "qkv_attention", "spatial_attention",
                       "avg_pool2d", "softmax"} do
      fns[#fns + 1] = {rn.core, f, "rn." .. f}
    end
    local rows = profile.run(once, {modules = model, functions = fns, repeats = 3, shapes = true,
                                    sync = on_gpu and function() rn.cuda.synchronize(dev) end or nil})
    print(profile.format(rows))
  end
  print(("realnet inference: preset=%s arch=%s res=%d dims=%s batch=%d device=%s %s%s: %.1f img/s "
    .. "(%.2f ms per batch, %d batches; warm-up %.1f s)"):format(model.cfg.preset, model.cfg.backbone.arch, S,
    table.concat(model.cfg.afs.dims, "/"), o.batch, where, o.bf16 and "bf16" or o.tf32 and "tf32" or "float32",
    (runner and " cuda-graph" or "") ..
      (on_gpu and rn.cuda.lanes() > 1 and (" lanes=%d"):format(rn.cuda.lanes()) or ""),
    o.batch / dt, dt * 1e3, n, t_warm))
end

local arg = arg or {}
if arg[1] == "conv" then
  bench_conv(parse(arg))
elseif arg[1] == "backbone" then
  bench_backbone(parse_backbone(arg))
elseif arg[1] == "data" then
  bench_data(parse_data(arg))
elseif arg[1] == "realnet" then
  bench_realnet(parse_realnet(arg))
elseif arg[1] == nil or arg[1] == "-h" or arg[1] == "--help" then
  usage()
else
  usage("unknown benchmark '" .. tostring(arg[1]) .. "' (available: conv, backbone, data, realnet)")
end
