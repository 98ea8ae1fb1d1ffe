-- Write the embedded demo dataset: textured surfaces with defects and exact masks (MVTec layout, no downloads).
--
--   realnet make-demo-data OUT [--seed N] [--size 256] [--train 80] [--test-good 20] [--test-defect 8]
--                              [--texture metal|fabric|tile] [--category demo_surface] [--threads N] [--force]
--
-- Writes OUT/<category>/{train/good, test/good, test/<defect>, ground_truth/<defect>/<id>_mask.png} with the
-- defect kinds scratch, spot, crack, missing_material and contamination (--test-defect images of each). The same
-- options give byte-identical files. Exit status: 0 written, 1 on an error, 2 on a usage error.
local rn = require "realnet"

local USAGE = [[
usage: realnet make-demo-data OUT [--seed N] [--size N] [--train N] [--test-good N] [--test-defect N]
                                  [--texture metal|fabric|tile] [--category NAME] [--threads N] [--force]
  writes a small MVTec-layout category of textured industrial surfaces with defects (scratch, spot, crack,
  missing_material, contamination) and exact masks, generated from the seed (no downloads).
  defaults: --seed 0 --size 256 --train 80 --test-good 20 --test-defect 8 (per defect kind) --texture metal
            --category demo_surface; --force writes into an existing category directory]]

local function usage(msg)
  if msg then
    io.stderr:write("realnet make-demo-data: ", msg, "\n(run 'realnet make-demo-data --help' for the options)\n")
    os.exit(2)
  end
  io.stdout:write(USAGE, "\n")
  os.exit(0)
end

local INTS = {["--seed"] = "seed", ["--size"] = "size", ["--train"] = "train", ["--test-good"] = "test_good",
              ["--test-defect"] = "test_defect", ["--threads"] = "threads"}
local STRS = {["--texture"] = "texture", ["--category"] = "category"}

local function parse(args)
  local o, out = {}, nil
  local i = 1
  while i <= #args do
    local a = args[i]
    local key, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    key = key or a
    if a == "-h" or a == "--help" then
      usage()
    elseif a == "--force" then
      o.overwrite = true
    elseif INTS[key] or STRS[key] then
      local v = inline
      if not v then i = i + 1; v = args[i] end
      if not v or v == "" then usage(key .. " needs a value") end
      if INTS[key] then
        local n = math.tointeger(tonumber(v))
        if not n then usage(key .. " needs an integer, got '" .. v .. "'") end
        if n < 0 then usage(key .. " must not be negative (got " .. n .. ")") end
        o[INTS[key]] = n
      else
        o[STRS[key]] = v
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      usage("unknown option " .. a)
    elseif out then
      usage("one output directory only (got " .. out .. " and " .. a .. ")")
    else
      out = a
    end
    i = i + 1
  end
  if not out then usage("no output directory given") end
  return out, o
end

local out, opts = parse(arg or {})
local t0 = rn.now()
local ok, dir, counts = pcall(rn.demo_data.make, out, opts)
if not ok then
  local msg = tostring(dir):gsub("^rn%.demo_data[%.%w_]*: ", ""):gsub("^make%-demo%-data: ", "")
  io.stderr:write("realnet make-demo-data: ", msg, "\n")
  os.exit(1)
end
print(("wrote %s: %d train, %d test good, %d test defect (%d each of %s), %d masks, %dx%d, seed %d, %.2f s")
      :format(dir, counts.train, counts.test_good, counts.test_defect, counts.per_defect,
              table.concat(counts.defects, ", "), counts.masks, opts.size or 256, opts.size or 256, opts.seed or 0,
              rn.now() - t0))
