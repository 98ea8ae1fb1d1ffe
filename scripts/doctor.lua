-- Check a dataset: layout, image/mask pairing, mask sizes, unreadable files, counts per split and defect.
--
--   realnet doctor DIR [--dataset mvtec|visa|mpdd|btad|folder|jsonl] [--category NAME] [--threads N]
--                      [--normal DIR] [--abnormal A,B] [--masks DIR] [--normal-test DIR] [--protocol FILE]
--
-- DIR is a category directory (it has train/ or test/), a dataset root (every category is checked, or the one
-- named by --category), or a VisA root with split_csv/1cls.csv. Every image and mask is decoded. Each problem
-- is printed with its path; the exit status is 0 when there are none, 1 when there are, 2 on a usage error.
local rn = require "realnet"
local cli = require "realnet.cli"

local KIND_LIST = {"mvtec", "visa", "mpdd", "btad", "folder", "jsonl"}
local KINDS = {}
for _, k in ipairs(KIND_LIST) do KINDS[k] = true end

local SPEC = {
  name = "doctor",
  usage = "DIR [--dataset mvtec|visa|mpdd|btad|folder|jsonl] [--category NAME] [--threads N]\n" ..
          "                          [--normal DIR] [--abnormal A,B,...] [--masks DIR] [--normal-test DIR]\n" ..
          "                          [--protocol FILE]",
  summary = "checks a dataset: missing or unpaired masks, masks whose size differs from their image, unreadable\n" ..
            "files, empty splits; prints counts per split and defect type and each problem by path.",
  positional = {{"dir", metavar = "DIR", required = true, missing = "no dataset directory given"}},
  too_many = function(pos) return ("one directory only (got %s and %s)"):format(pos[1], pos[2]) end,
  options = {
    {"--dataset", dest = "kind", metavar = table.concat(KIND_LIST, "|"), help = "layout (default: detected)"},
    {"--category", help = "check only this category of a dataset root"},
    {"--threads", type = "int", min = 1, help = "decoding threads"},
    {"--normal", type = "path", metavar = "DIR", help = "folder layout: the normal images"},
    {"--abnormal", type = "list", metavar = "A,B,...", help = "folder layout: the abnormal folders"},
    {"--masks", type = "path", metavar = "DIR", help = "folder layout: the masks"},
    {"--normal-test", type = "path", metavar = "DIR", help = "folder layout: normal test images"},
    {"--protocol", type = "path", help = "jsonl layout: the protocol file"},
  },
  epilog = "exit status: 0 clean, 1 problems found, 2 usage error",
}

local function usage(msg) cli.usage_error(SPEC, msg) end

local function parse(args)
  local o = cli.parse(args, SPEC)
  o.opts = {}
  if o.kind and not KINDS[o.kind] then
    usage("unknown dataset kind '" .. o.kind .. "' (expected mvtec, visa, mpdd, btad, folder or jsonl)")
  end
  for _, k in ipairs{"normal", "masks", "normal_test", "protocol", "abnormal"} do o.opts[k] = o[k] end
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
