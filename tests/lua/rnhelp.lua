-- Helpers shared by the Lua specs: flattening tensors, approximate comparison, error capture, temporary
-- directories, file reads and writes, and running the realnet binary.
local rn = require "realnet"

local H = {}

--- All elements of a tensor as a flat Lua list (row-major).
function H.flat(t)
  local out = {}
  local function rec(v)
    if type(v) == "table" then for _, e in ipairs(v) do rec(e) end else out[#out + 1] = v end
  end
  rec(t:totable())
  return out
end

--- Largest |a - b| over two tensors (or a tensor and a nested table) of the same shape.
function H.maxdiff(a, b)
  local fa = H.flat(a)
  local fb = rn.is_tensor(b) and H.flat(b) or H.flat(rn.tensor(b))
  assert(#fa == #fb, ("element counts differ: %d vs %d"):format(#fa, #fb))
  local m = 0
  for i = 1, #fa do m = math.max(m, math.abs(fa[i] - fb[i])) end
  return m
end

--- The error message of f(...), or nil when it did not fail.
function H.err(f, ...)
  local ok, msg = pcall(f, ...)
  if ok then return nil end
  return tostring(msg)
end

--- A fresh empty temporary directory.
function H.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "'")
  return dir
end

--- s quoted for the shell.
function H.q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- The bytes of a file, or nil and the error when it cannot be opened.
H.read = require("realnet.rundir").read_text

--- The bytes of a file, or "" when it cannot be opened.
function H.slurp(path) return H.read(path) or "" end

--- Writes bytes to path; returns path.
function H.spit(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  return path
end

--- Runs `bin <args>` (a shell fragment) with stdout and stderr in files under dir; opts.env prefixes the command,
--- opts.stdin is fed as standard input (else /dev/null). Returns stdout, stderr, exit code.
function H.run(bin, dir, args, opts)
  opts = opts or {}
  local input = " < /dev/null"
  if opts.stdin then input = " < " .. H.q(H.spit(dir .. "/stdin", opts.stdin)) end
  local cmd = (opts.env or "") .. " " .. H.q(bin) .. " " .. args .. input .. " > " .. H.q(dir .. "/out") .. " 2> " ..
    H.q(dir .. "/err")
  local _, _, code = os.execute(cmd)
  return H.slurp(dir .. "/out"), H.slurp(dir .. "/err"), code
end

--- Runs `bin <args>` inside dir; returns the exit code and stdout + stderr together.
function H.sh(bin, dir, args)
  local f = io.popen(("cd %s && %s %s 2>&1; echo \"rc=$?\""):format(dir, bin, args))
  local out = f:read("a")
  f:close()
  return tonumber(out:match("rc=(%d+)%s*$")), out
end

--- `realnet train` flags for a tiny RealNet (32x32 input, ResNet-18, a few channels) that trains in seconds.
H.TINY_TRAIN = "--batch 4 --image-size 32 --backbone resnet18 --model.backbone.layers=1,2,3 --afs 8,16,16 "
  .. "--model.afs.batches=1 --model.afs.batch=4 --model.disc.hidden=8 --model.disc.mid=8,8 "
  .. "--model.recon.channel_mult=1 --model.recon.attention=1 --model.recon.norm_groups=8 --model.recon.head_channels=8"

--- Writes n random 20x20 RGB PNGs into <root>/<cat>/train/good for each category (an MVTec-layout training set).
function H.tiny_dataset(root, cats, n)
  for c, cat in ipairs(cats) do
    os.execute("mkdir -p " .. H.q(root .. "/" .. cat .. "/train/good"))
    for i = 1, n do
      local x = (rn.rand({20, 20, 3}, {seed = 10 * c + i}) * 255):byte()
      rn.image.write_png(("%s/%s/train/good/%03d.png"):format(root, cat, i), x)
    end
  end
  return root
end

return H
