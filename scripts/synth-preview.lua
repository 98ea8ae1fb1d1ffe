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
local cli = require "realnet.cli"

-- "LO,HI" -> {lo, hi}
local function opacity(text)
  local lo, hi = text:match("^([%d%.]+),([%d%.]+)$")
  if not (lo and tonumber(lo) and tonumber(hi)) then return nil, "must read LO,HI (e.g. 0.2,1)" end
  return {tonumber(lo), tonumber(hi)}
end

local SPEC = {
  name = "synth-preview",
  usage = "--data DIR --category NAME --source dtd|sia|cutpaste|nsa --out FILE.png\n" ..
          "                             [--dtd DIR] [--sia DIR] [--n 8] [--seed 0] [--size 256] [--dataset mvtec]\n" ..
          "                             [--foreground RULE] [--opacity LO,HI]",
  summary = "writes a grid of synthetic anomalies on the category's training images (rows of A | M | I).",
  options = {
    {"--data", type = "path", metavar = "DIR", required = true, help = "dataset root or category directory"},
    {"--category", help = "category name"},
    {"--source", default = "dtd", metavar = "dtd|sia|cutpaste|nsa", help = "anomaly source"},
    {"--dtd", type = "path", metavar = "DIR", help = "DTD texture folder (--source dtd)"},
    {"--sia", type = "path", metavar = "DIR", help = "SIA image folder (--source sia)"},
    {"--out", type = "path", metavar = "FILE.png", required = true, help = "the grid to write"},
    {"--n", type = "int", min = 1, default = 8, help = "samples"},
    {"--seed", type = "int", min = 0, default = 0, help = "synthesis seed"},
    {"--size", type = "int", min = 1, default = 256, help = "image size"},
    {"--dataset", default = "mvtec", metavar = "mvtec|visa|mpdd|btad", help = "dataset layout"},
    {"--foreground", metavar = "RULE", help = "foreground rule (default: the category's)"},
    {"--opacity", type = opacity, metavar = "LO,HI", help = "blend opacity range"},
  },
}

local function usage(msg) cli.usage_error(SPEC, msg) end

local o = cli.parse(arg, SPEC)
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
