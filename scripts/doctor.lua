-- Check a dataset: layout, image/mask pairing, mask sizes, unreadable files, counts per split and defect.
--
--   realnet doctor DIR [--dataset mvtec|visa|mpdd|btad|folder|jsonl] [--category NAME] [--threads N]
--                      [--normal DIR] [--abnormal A,B] [--masks DIR] [--normal-test DIR] [--protocol FILE]
--
-- DIR is a category directory (it has train/ or test/), a dataset root (every category is checked, or the one
-- named by --category), or a VisA root with split_csv/1cls.csv. Every image and mask is decoded. Each problem
-- is printed with its path; the exit status is 0 when there are none, 1 when there are, 2 on a usage error.
local rn = require "realnet"

local USAGE = [[
usage: realnet doctor DIR [--dataset mvtec|visa|mpdd|btad|folder|jsonl] [--category NAME] [--threads N]
                          [--normal DIR] [--abnormal A,B,...] [--masks DIR] [--normal-test DIR] [--protocol FILE]
  checks a dataset: missing or unpaired masks, masks whose size differs from their image, unreadable files,
  empty splits; prints counts per split and defect type and each problem by path.
  exit status: 0 clean, 1 problems found, 2 usage error]]

local KINDS = {mvtec = true, visa = true, mpdd = true, btad = true, folder = true, jsonl = true}

local function usage(msg)
  if msg then
    io.stderr:write("realnet doctor: ", msg, "\n(run 'realnet doctor --help' for the options)\n")
    os.exit(2)
  end
  io.stdout:write(USAGE, "\n")
  os.exit(0)
end

local function parse(args)
  local o = {opts = {}}
  local valued = {["--dataset"] = "kind", ["--category"] = "category", ["--threads"] = "threads",
                  ["--normal"] = "normal", ["--abnormal"] = "abnormal", ["--masks"] = "masks",
                  ["--normal-test"] = "normal_test", ["--protocol"] = "protocol"}
  local i = 1
  while i <= #args do
    local a = args[i]
    local key, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    key = key or a
    if a == "-h" or a == "--help" then
      usage()
    elseif valued[key] then
      local v = inline
      if not v then i = i + 1; v = args[i] end
      if not v or v == "" then usage(key .. " needs a value") end
      o[valued[key]] = v
    elseif a:sub(1, 1) == "-" then
      usage("unknown option " .. a)
    elseif o.dir then
      usage("one directory only (got " .. o.dir .. " and " .. a .. ")")
    else
      o.dir = a
    end
    i = i + 1
  end
  if not o.dir then usage("no dataset directory given") end
  if o.kind and not KINDS[o.kind] then
    usage("unknown dataset kind '" .. o.kind .. "' (expected mvtec, visa, mpdd, btad, folder or jsonl)")
  end
  if o.threads then
    o.threads = math.tointeger(tonumber(o.threads))
    if not o.threads or o.threads < 1 then usage("--threads needs a positive integer") end
  end
  for _, k in ipairs{"normal", "masks", "normal_test", "protocol"} do o.opts[k] = o[k] end
  if o.abnormal then
    local list = {}
    for name in o.abnormal:gmatch("[^,]+") do list[#list + 1] = name end
    o.opts.abnormal = list
  end
  return o
end

local function is_dir(p) return rn.file_type(p) == "directory" end

-- The (root, category) pairs to check.
local function targets(o)
  local dir = o.dir:gsub("(.)/+$", "%1")
  if not is_dir(dir) then usage("dataset directory " .. dir .. " does not exist") end
  if not o.kind then
    if o.protocol then
      o.kind = "jsonl"
    else
      local kind, msg = rn.data.detect(dir)
      if not kind then usage(msg) end
      o.kind = kind
    end
  end
  if o.category then return {{dir, o.category}} end
  local single = o.kind == "folder" or o.kind == "jsonl" or is_dir(dir .. "/train") or is_dir(dir .. "/test")
    or rn.file_type(dir .. "/split_csv/1cls.csv") == "file"
  if single then return {{dir, nil}} end
  local ok, cats = pcall(rn.data.categories, o.kind, dir)
  if not ok then usage(tostring(cats)) end
  if #cats == 0 then usage("no categories under " .. dir .. " (no sub-directory has train/ or test/)") end
  local list = {}
  for _, c in ipairs(cats) do list[#list + 1] = {dir, c} end
  return list
end

local function report(root, category, r)
  local name = category and (root .. "/" .. category) or root
  print(("%s (%s)"):format(name, r.kind))
  print(("  %-6s %-24s %7s %7s"):format("split", "defect", "images", "masks"))
  for _, c in ipairs(r.counts) do
    print(("  %-6s %-24s %7d %7d"):format(c.split, c.defect, c.images, c.masks))
  end
  print(("  %d images, %d masks checked"):format(r.images, r.masks))
  for _, w in ipairs(r.warnings) do print(("  warning: %s: %s: %s"):format(w.kind, w.path, w.message)) end
  for _, p in ipairs(r.problems) do print(("  PROBLEM: %s: %s: %s"):format(p.kind, p.path, p.message)) end
end

local o = parse(arg or {})
local total, errors = 0, 0
for _, t in ipairs(targets(o)) do
  local ok, r = pcall(rn.data.check, o.kind, t[1], t[2], o.opts, o.threads)
  if ok then
    r.kind = o.kind
    report(t[1], t[2], r)
    total = total + #r.problems
  else
    print(("%s: ERROR: %s"):format(t[2] and (t[1] .. "/" .. t[2]) or t[1], tostring(r)))
    errors = errors + 1
  end
end
if total == 0 and errors == 0 then
  print("OK: no problems found")
  os.exit(0)
end
print(("%d problem%s%s found"):format(total, total == 1 and "" or "s",
                                      errors > 0 and (" and " .. errors .. " unreadable dataset(s)") or ""))
os.exit(1)
