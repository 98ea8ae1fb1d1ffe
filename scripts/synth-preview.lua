-- Write a PNG grid of synthetic anomalies: one row per sample, anomalous image | mask | normal image.
--
--   realnet synth-preview --data DIR --category NAME --source dtd|sia|cutpaste|nsa [--dtd DIR] [--sia DIR]
--                         --out grid.png [--n 8] [--seed N] [--size 256] [--dataset mvtec|visa|mpdd|btad]
--                         [--foreground RULE] [--opacity LO,HI]
--
-- DIR is a dataset root holding the category (DIR/NAME/train/good) or the category directory itself. The
-- foreground rule comes from the category (rn.synth.foreground.table) unless --foreground gives one
-- ("otsu_dark_c6_o6", "none", ...); an unknown category gets none, with a warning.
local rn = require "realnet"

local USAGE = [[
usage: realnet synth-preview --data DIR --category NAME --source dtd|sia|cutpaste|nsa --out FILE.png
                             [--dtd DIR] [--sia DIR] [--n 8] [--seed 0] [--size 256] [--dataset mvtec]
                             [--foreground RULE] [--opacity LO,HI]
  writes a grid of synthetic anomalies on the category's training images (rows of A | M | I).]]

local function usage(msg)
  if msg then
    io.stderr:write("realnet synth-preview: ", msg, "\n(run 'realnet synth-preview --help' for the options)\n")
    os.exit(2)
  end
  io.stdout:write(USAGE, "\n")
  os.exit(0)
end

local function parse(args)
  local o = {n = "8", seed = "0", size = "256", dataset = "mvtec", source = "dtd"}
  local keys = {data = true, category = true, source = true, dtd = true, sia = true, out = true, n = true,
                seed = true, size = true, dataset = true, foreground = true, opacity = true}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then usage() end
    local key, inline = a:match("^%-%-([%w%-]+)=(.*)$")
    key = key or a:match("^%-%-([%w%-]+)$")
    if not key or not keys[key] then usage("unknown argument " .. a) end
    local v = inline
    if not v then i = i + 1; v = args[i] end
    if not v or v == "" then usage("--" .. key .. " needs a value") end
    o[key] = v
    i = i + 1
  end
  for _, k in ipairs{"data", "out"} do
    if not o[k] then usage("--" .. k .. " is required") end
  end
  for _, k in ipairs{"n", "seed", "size"} do
    o[k] = math.tointeger(tonumber(o[k]))
    if not o[k] or o[k] < (k == "seed" and 0 or 1) then usage("--" .. k .. " must be a positive integer") end
  end
  if o.opacity then
    local lo, hi = o.opacity:match("^([%d%.]+),([%d%.]+)$")
    if not lo then usage("--opacity must read LO,HI (e.g. 0.2,1)") end
    o.opacity = {tonumber(lo), tonumber(hi)}
  end
  return o
end

local o = parse(arg)
local dir, category = o.data, o.category
if category and rn.file_type(dir .. "/" .. category) ~= "directory" and rn.file_type(dir .. "/train") == "directory" then
  category = nil -- DIR is the category directory itself
end
if not category and not o.category then
  if rn.file_type(dir .. "/train") ~= "directory" then usage("--category is required when DIR is a dataset root") end
end

local ok, ds = pcall(rn.data.open, o.dataset, dir, category, {split = "train", size = o.size})
if not ok then usage(tostring(ds)) end
if #ds == 0 then usage("no training images in " .. dir .. (category and ("/" .. category) or "")) end

local src_dir = ({dtd = o.dtd, sia = o.sia, sdas = o.sia})[o.source]
if (o.source == "dtd" or o.source == "sia" or o.source == "sdas") and not src_dir then
  usage(("--source %s needs --%s DIR"):format(o.source, o.source == "dtd" and "dtd" or "sia"))
end

local synth_ok, synth = pcall(rn.synth.new, {source = o.source, dir = src_dir, seed = o.seed,
  category = o.category, dataset = o.dataset, foreground = o.foreground, opacity = o.opacity})
if not synth_ok then usage(tostring(synth)) end

local t0 = rn.now()
local A, I, M = synth:batch(ds, o.n)
local took = rn.now() - t0
rn.synth.write_grid(o.out, A, M, I, ds:info().normalize and "imagenet" or "unit")
local d = synth:describe()
print(("wrote %s: %d samples of %s (%d source files, foreground %s, seed %d) in %.2f s"):format(
  o.out, o.n, o.source, d.files, d.foreground, o.seed, took))
