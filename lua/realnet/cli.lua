--- realnet.cli: declarative option parsing for the `realnet` subcommands (scripts/*.lua) and recipes.
--
--   local cli = require "realnet.cli"
--   local spec = {name = "train", usage = "[options] [--section.key=value ...]", summary = "train RealNet",
--     positional = {{"rundir", metavar = "RUNDIR", required = true}},
--     options = {{"--category", type = "string", required = true, help = "category name"},
--                {"--epochs", type = "int", default = 10, min = 1},
--                {"--afs", type = "list", of = "int", count = 4},
--                {"--rrs-mode", type = "choice", choices = {"max", "avg", "maxavg"}, default = "maxavg"},
--                {"--weights", type = "path"}, {"--quick", type = "flag"}},
--     overrides = true}                      -- accept --trainer.epochs=5 (returned apart)
--   local o, overrides = cli.parse(arg, spec)
--   -- o.category, o.epochs, o.rrs_mode, o.rundir; overrides["trainer.epochs"] = "5"
--
-- Both `--k v` and `--k=v`; "--" ends the options. Types: string, path, int, number, flag (also --k=false),
-- list (comma-separated; `of` = element type, `count` = required length), choice, or a function(text) ->
-- value | nil, msg. `min`/`max` bound numbers. Option names map to fields with '-' -> '_'. A repeated option
-- with `multi = true` collects a list. Usage errors print "realnet NAME: msg" and a hint to stderr and exit 2
-- (unknown options list the valid ones and the closest: "did you mean --epochs?"); --help prints the
-- generated help to stdout (or spec.help_stream) and exits 0. cli.try_parse returns nil, msg instead of
-- exiting (for tests); cli.try(spec, f, ...) turns an error of a later check into the same usage error.
local M = {}

--- Levenshtein distance between two strings (for "did you mean").
function M.distance(a, b)
  if a == b then return 0 end
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = {[0] = i}
    local ai = a:byte(i)
    for j = 1, #b do
      local cost = ai == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

--- The candidates sorted nearest first (ties keep their order), and the nearest one when it is close enough
-- to be a likely typo (or a prefix/suffix of the word, or the word of it).
function M.nearest(word, candidates)
  local scored = {}
  for i, c in ipairs(candidates) do scored[i] = {c, M.distance(word, c), i} end
  table.sort(scored, function(x, y) if x[2] ~= y[2] then return x[2] < y[2] end return x[3] < y[3] end)
  local list = {}
  for i, s in ipairs(scored) do list[i] = s[1] end
  local best = scored[1]
  local close = best and (best[2] <= math.max(2, #word // 3) or best[1]:find(word, 1, true)
    or word:find(best[1], 1, true))
  return list, close and best[1] or nil
end

local function opt_name(o) return o[1] or o.name end
local function dest_of(o) return o.dest or opt_name(o):gsub("^%-+", ""):gsub("%-", "_") end

local NUMERIC = {int = true, number = true}

local function bounds(o, v, shown)
  if o.min and v < o.min then return nil, ("expected a value >= %s, got '%s'"):format(o.min, shown) end
  if o.max and v > o.max then return nil, ("expected a value <= %s, got '%s'"):format(o.max, shown) end
  return v
end

local function scalar(kind, text, o)
  if kind == "int" then
    local v = math.tointeger(tonumber(text))
    if not v then return nil, ("expected an integer, got '%s'"):format(text) end
    return bounds(o, v, text)
  elseif kind == "number" then
    local v = tonumber(text)
    if not v or v ~= v or v == math.huge or v == -math.huge then
      return nil, ("expected a finite number, got '%s'"):format(text)
    end
    return bounds(o, v, text)
  elseif kind == "string" or kind == "path" then
    if text == "" then return nil, "needs a non-empty value" end
    return text
  end
  error("cli: unknown option type '" .. tostring(kind) .. "'", 0)
end

--- Converts the text of option o (a spec entry) to its value; nil, msg (without the option name) on failure.
function M.convert(o, text)
  local kind = o.type or "string"
  if type(kind) == "function" then return kind(text) end
  if kind == "flag" then
    local v = ({["true"] = true, ["1"] = true, yes = true, on = true,
                ["false"] = false, ["0"] = false, no = false, off = false})[text:lower()]
    if v == nil then return nil, ("expected true or false, got '%s'"):format(text) end
    return v
  elseif kind == "choice" then
    for _, c in ipairs(o.choices) do if c == text then return c end end
    local _, near = M.nearest(text, o.choices)
    return nil, ("'%s' is not one of %s%s"):format(text, table.concat(o.choices, ", "),
                                                  near and (" (did you mean " .. near .. "?)") or "")
  elseif kind == "list" then
    local list = {}
    if text ~= "" then
      for item in (text .. ","):gmatch("([^,]*),") do
        local v, msg = scalar(o.of or "string", item, o)
        if v == nil then return nil, ("item %d: %s"):format(#list + 1, msg) end
        list[#list + 1] = v
      end
    end
    if o.count and #list ~= o.count then
      return nil, ("expected %d comma-separated values, got %d ('%s')"):format(o.count, #list, text)
    end
    return list
  end
  return scalar(kind, text, o)
end

local function metavar(o)
  if o.metavar then return o.metavar end
  local kind = o.type or "string"
  if kind == "choice" then return table.concat(o.choices, "|") end
  if kind == "list" then local e = (o.of or "string"):upper(); return e .. ",..." end
  return ({int = "N", number = "X", path = "FILE", string = "NAME"})[kind] or "VALUE"
end

--- The generated help text of a spec.
function M.help(spec)
  local lines = {}
  local synopsis = spec.usage
  if not synopsis then
    local parts = {}
    for _, p in ipairs(spec.positional or {}) do
      local m = p.metavar or p[1]:upper()
      if p.variadic then m = m .. "..." end
      parts[#parts + 1] = p.required and m or ("[" .. m .. "]")
    end
    parts[#parts + 1] = "[options]"
    synopsis = table.concat(parts, " ")
  end
  lines[1] = ("usage: realnet %s %s"):format(spec.name, synopsis)
  if spec.summary then lines[#lines + 1] = "  " .. spec.summary:gsub("\n", "\n  ") end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "options:"
  local rows = {}
  for _, o in ipairs(spec.options or {}) do
    local left = opt_name(o) .. (o.alias and (", " .. o.alias) or "")
    if (o.type or "string") ~= "flag" then left = left .. " " .. metavar(o) end
    local right = o.help or ""
    if o.default ~= nil and o.type ~= "flag" then
      local d = type(o.default) == "table" and table.concat(o.default, ",") or tostring(o.default)
      right = right .. (right ~= "" and " " or "") .. "(default " .. d .. ")"
    end
    if o.required then right = right .. (right ~= "" and " " or "") .. "(required)" end
    rows[#rows + 1] = {left, right}
  end
  rows[#rows + 1] = {"-h, --help", "show this help"}
  if spec.overrides then rows[#rows + 1] = {"--SECTION.KEY=VALUE", "override a config field (repeatable)"} end
  local width = 0
  for _, r in ipairs(rows) do width = math.max(width, #r[1]) end
  for _, r in ipairs(rows) do
    lines[#lines + 1] = (r[2] ~= "" and ("  %-" .. width .. "s  %s") or "  %s"):format(r[1], r[2])
  end
  if spec.epilog then lines[#lines + 1] = ""; lines[#lines + 1] = spec.epilog end
  return table.concat(lines, "\n")
end

--- try_parse(args, spec) -> options, overrides | nil, msg | nil, "help". Never exits.
function M.try_parse(args, spec)
  local by_name, names = {}, {}
  local o = {}
  for _, opt in ipairs(spec.options or {}) do
    by_name[opt_name(opt)] = opt
    names[#names + 1] = opt_name(opt)
    if opt.alias then by_name[opt.alias] = opt end
    if opt.default ~= nil then
      local d = opt.default
      if type(d) == "table" then d = table.move(d, 1, #d, 1, {}) end
      o[dest_of(opt)] = d
    elseif opt.type == "flag" then
      o[dest_of(opt)] = false
    end
    if opt.multi and not opt.default then o[dest_of(opt)] = {} end
  end
  local overrides, seen, pos = {}, {}, {}
  local i, only_positional = 1, false
  local function unknown(a)
    local _, near = M.nearest(a, names)
    return nil, ("unknown option %s%s; valid options: %s"):format(a, near and (" (did you mean " .. near .. "?)") or "",
                                                                table.concat(names, ", "))
  end
  while i <= #args do
    local a = args[i]
    if only_positional or a == "-" or a:sub(1, 1) ~= "-" or tonumber(a) then
      pos[#pos + 1] = a
    elseif a == "--" then
      only_positional = true
    elseif a == "-h" or a == "--help" then
      return nil, "help"
    else
      local key, inline = a:match("^(%-%-?[^=]+)=(.*)$")
      key = key or a
      local opt = by_name[key]
      if opt then
        local text = inline
        if text == nil then
          if opt.type == "flag" then
            text = "true"
          else
            local nxt = args[i + 1]
            if nxt == nil or (nxt:sub(1, 2) == "--" and #nxt > 2) then return nil, key .. " needs a value" end
            text = nxt
            i = i + 1
          end
        end
        local v, msg = M.convert(opt, text)
        if v == nil then return nil, key .. ": " .. msg end
        local dest = dest_of(opt)
        if opt.multi then
          if not seen[dest] then o[dest] = {} end
          o[dest][#o[dest] + 1] = v
        else
          o[dest] = v
        end
        seen[dest] = true
      elseif spec.overrides and key:match("^%-%-[%a_][%w_]*%.[%w_%.]+$") then
        local text = inline
        if text == nil then
          text = args[i + 1]
          if text == nil then return nil, key .. " needs a value" end
          i = i + 1
        end
        overrides[key:sub(3)] = text
      else
        return unknown(key)
      end
    end
    i = i + 1
  end
  local plist = spec.positional or {}
  local k = 1
  for _, p in ipairs(plist) do
    if p.variadic then
      o[p[1]] = table.move(pos, k, #pos, 1, {})
      k = #pos + 1
      if p.required and #o[p[1]] == 0 then return nil, p.missing or ("missing " .. (p.metavar or p[1]:upper())) end
    else
      o[p[1]] = pos[k]
      if pos[k] == nil and p.required then return nil, p.missing or ("missing " .. (p.metavar or p[1]:upper())) end
      k = k + 1
    end
  end
  if pos[k] ~= nil then
    if #plist == 0 then return nil, ("unexpected argument '%s' (this command takes options only)"):format(pos[k]) end
    local last = plist[#plist]
    return nil, spec.too_many and spec.too_many(pos) or
      ("unexpected argument '%s' (expected %s only)"):format(pos[k], last.metavar or last[1]:upper())
  end
  for _, opt in ipairs(spec.options or {}) do
    if opt.required and not seen[dest_of(opt)] then return nil, opt.missing or (opt_name(opt) .. " is required") end
  end
  return o, overrides
end

--- Prints "realnet NAME: msg" and a hint to stderr and exits 2 (use it for checks after parsing too).
function M.usage_error(spec, msg)
  io.stderr:write(("realnet %s: %s\n(run 'realnet %s --help' for the options)\n"):format(spec.name, msg, spec.name))
  os.exit(2)
end

--- Calls f(...) and returns its results; an error becomes a usage error (exit 2) without a traceback. For
-- steps that check user input after parsing: cli.try(spec, config.apply, cfg, overrides).
function M.try(spec, f, ...)
  local res = table.pack(pcall(f, ...))
  if not res[1] then M.usage_error(spec, tostring(res[2])) end
  return table.unpack(res, 2, res.n)
end

--- parse(args, spec) -> options, overrides; exits 0 after --help and 2 on a usage error.
function M.parse(args, spec)
  local o, overrides = M.try_parse(args or {}, spec)
  if o then return o, overrides end
  if overrides == "help" then
    (spec.help_stream or io.stdout):write(M.help(spec), "\n")
    os.exit(0)
  end
  M.usage_error(spec, overrides)
end

return M
