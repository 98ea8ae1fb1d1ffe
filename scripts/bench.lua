-- Benchmarks: `realnet bench conv [--batch 8] [--res 256] [--quick]` times every WideResNet-50-2 conv shape.
local rn = require "realnet"

local function usage(msg)
  if msg then io.stderr:write("realnet bench: ", msg, "\n") end
  io.stderr:write("usage: realnet bench conv [--batch N] [--res N] [--quick]\n",
                  "  prints GFLOP/s per convolution shape of WideResNet-50-2 and the total as a fraction of sgemm\n")
  os.exit(msg and 1 or 0)
end

local function parse(args)
  local opts = {batch = 8, res = 256, quick = false}
  local i = 2
  while i <= #args do
    local a = args[i]
    if a == "--quick" then
      opts.quick = true
    elseif a == "--batch" or a == "--res" then
      local v = math.tointeger(tonumber(args[i + 1]))
      if not v or v < 1 then usage(a .. " needs a positive integer") end
      opts[a:sub(3)] = v
      i = i + 1
    elseif a == "-h" or a == "--help" then
      usage()
    else
      usage("unknown option " .. a)
    end
    i = i + 1
  end
  return opts
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
  local o = {arch = "wide_resnet50_2", batch = 8, res = 256, seconds = 5, peer = false}
  local i = 2
  while i <= #args do
    local a = args[i]
    if a == "--peer" then
      o.peer = true
    elseif a == "--arch" then
      o.arch = args[i + 1] or backbone_usage("--arch needs a name")
      i = i + 1
    elseif a == "--batch" or a == "--res" or a == "--threads" or a == "--seconds" then
      local v = tonumber(args[i + 1])
      if a ~= "--seconds" then v = math.tointeger(v) end
      if not v or v < (a == "--seconds" and 0 or 1) then backbone_usage(a .. " needs a positive number") end
      o[a:sub(3)] = v
      i = i + 1
    elseif a == "-h" or a == "--help" then
      backbone_usage()
    else
      backbone_usage("unknown option " .. a)
    end
    i = i + 1
  end
  return o
end

-- The peer script: $REALNET_SHARED/bench/torch_peer.py, else ../shared beside the source tree.
local function peer_script()
  local shared = os.getenv("REALNET_SHARED")
  if not shared or shared == "" then shared = (rn.home or ".") .. "/../shared" end
  local path = shared .. "/bench/torch_peer.py"
  if rn.file_type(path) ~= "file" then return nil, "cannot find " .. path .. " (set REALNET_SHARED)" end
  return path
end

local function run_peer(o, threads)
  local script, err = peer_script()
  if not script then return nil, err end
  if not os.execute("command -v python3 >/dev/null 2>&1") then return nil, "python3 is not installed" end
  local q = function(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
  local cmd = table.concat({"python3", q(script), q(o.arch), o.batch, o.res, threads}, " ") .. " 2>&1"
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

local arg = arg or {}
if arg[1] == "conv" then
  bench_conv(parse(arg))
elseif arg[1] == "backbone" then
  bench_backbone(parse_backbone(arg))
elseif arg[1] == nil or arg[1] == "-h" or arg[1] == "--help" then
  usage()
else
  usage("unknown benchmark '" .. tostring(arg[1]) .. "' (available: conv, backbone)")
end
