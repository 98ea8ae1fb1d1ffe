--- realnet.config: nested config tables with defaults, dotted overrides, recipes with scales, and dump/load.
--
--   local config = require "realnet.config"
--   local cfg = config.new{trainer = {epochs = 10, lr = 1e-4, dims = {256, 512}},
--                          data = {category = "bottle", weights = nil, _types = {weights = "path"}}}
--   config.apply(cfg, {["trainer.epochs"] = "5", ["trainer.dims"] = "64,128", ["data.weights"] = "w.h5"})
--   config.save(cfg, "runs/x/config.lua")      -- every field written out; config.load reads it back
--   local cfg, run = config.load_recipe("recipes/quickstart.lua", {scale = "smoke", overrides = overrides})
--
-- An override's text is converted to the type of the default: integer (an integer default takes integers
-- only), number, boolean (true/false/yes/no/on/off/1/0), string, or list ("a,b,c", elements typed like the
-- default's first element). A table may carry `_types = {key = "int" | "number" | "bool" | "string" | "path" |
-- "list" | "list:int" | "list:number" | "choice:a|b|c"}` for fields whose default is nil or needs a type of its
-- own; such a field also takes "none" (back to nil). An unknown key fails at once listing the valid keys,
-- nearest first. A recipe file returns a table with optional `run` (a function) and `scales = {smoke = {...},
-- cpu = {...}, paper = {...}}`; the chosen scale is merged over the base (its keys must exist there).
local cli = require "realnet.cli"

local M = {}

local function is_list(t)
  if type(t) ~= "table" then return false end
  if next(t) == nil then return true end -- an empty table is an empty list
  local n = #t
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
  end
  return n > 0
end
M.is_list = is_list

--- A deep copy (functions and userdata are shared).
function M.copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, e in pairs(v) do t[k] = M.copy(e) end
  return t
end

--- A new config: a deep copy of defaults.
function M.new(defaults) return M.copy(defaults or {}) end

local function section_types(t) return type(t._types) == "table" and t._types or {} end

--- The dotted keys of every settable field (leaves, lists and typed fields), sorted.
function M.keys(cfg)
  local out = {}
  local function walk(t, prefix)
    local names = {}
    for k, v in pairs(t) do
      if type(k) == "string" and k ~= "_types" and type(v) ~= "function" then names[k] = true end
    end
    for k in pairs(section_types(t)) do names[k] = true end
    for k in pairs(names) do
      local v = t[k]
      if type(v) == "table" and not is_list(v) then walk(v, prefix .. k .. ".") else out[#out + 1] = prefix .. k end
    end
  end
  walk(cfg, "")
  table.sort(out)
  return out
end

local function unknown_key(cfg, key, what)
  local list = cli.nearest(key, M.keys(cfg))
  local shown = {}
  for i = 1, math.min(#list, 40) do shown[i] = list[i] end
  if #list > 40 then shown[#shown + 1] = ("... (%d more)"):format(#list - 40) end
  error(("config: unknown key '%s'%s; valid keys (nearest first): %s"):format(key, what or "",
        table.concat(shown, ", ")), 0)
end

local BOOL = {["true"] = true, yes = true, on = true, ["1"] = true,
              ["false"] = false, no = false, off = false, ["0"] = false}

-- The type name of a field from its declared type or its default.
local function type_of(default, declared)
  if declared then return declared end
  local t = type(default)
  if t == "number" then return math.type(default) == "integer" and "int" or "number" end
  if t == "boolean" then return "bool" end
  if t == "string" then return "string" end
  if is_list(default) then
    local e = type(default[1]) ~= "table" and type_of(default[1]) or nil
    return "list:" .. ((e == nil or e:match("^list")) and "string" or e)
  end
  return nil
end

--- Converts text to a type name (see the header); nil, msg on failure.
function M.convert(kind, text)
  if kind == "int" then
    local v = math.tointeger(tonumber(text))
    if v == nil then return nil, ("expected an integer, got '%s'"):format(text) end
    return v
  elseif kind == "number" then
    local v = tonumber(text)
    if v == nil then return nil, ("expected a number, got '%s'"):format(text) end
    return v
  elseif kind == "bool" then
    local v = BOOL[text:lower()]
    if v == nil then return nil, ("expected true or false, got '%s'"):format(text) end
    return v
  elseif kind == "string" or kind == "path" then
    return text
  elseif kind == "list" or kind:match("^list:") then
    local elem = kind:match("^list:(.+)$") or "string"
    local list = {}
    if text ~= "" then
      for item in (text .. ","):gmatch("([^,]*),") do
        local v, msg = M.convert(elem, item)
        if v == nil then return nil, ("item %d: %s"):format(#list + 1, msg) end
        list[#list + 1] = v
      end
    end
    return list
  elseif kind:match("^choice:") then
    local choices = {}
    for c in kind:sub(8):gmatch("[^|]+") do
      if c == text then return c end
      choices[#choices + 1] = c
    end
    local _, near = cli.nearest(text, choices)
    return nil, ("'%s' is not one of %s%s"):format(text, table.concat(choices, ", "),
                                                  near and (" (did you mean " .. near .. "?)") or "")
  end
  error("config: unknown field type '" .. tostring(kind) .. "'", 0)
end

-- The table holding dotted key's last part, and that part; raises on an unknown key.
local function locate(cfg, key)
  if type(key) ~= "string" or not key:match("^[%a_][%w_]*[%w_%.]*$") or key:find("..", 1, true)
     or key:sub(-1) == "." then
    error(("config: bad key '%s' (expected dotted names like trainer.epochs)"):format(tostring(key)), 0)
  end
  local t, parts = cfg, {}
  for p in key:gmatch("[^%.]+") do parts[#parts + 1] = p end
  for i = 1, #parts - 1 do
    local v = t[parts[i]]
    if type(v) ~= "table" or is_list(v) then unknown_key(cfg, key) end
    t = v
  end
  local last = parts[#parts]
  if last == "_types" or (t[last] == nil and section_types(t)[last] == nil) or type(t[last]) == "function" then
    unknown_key(cfg, key)
  end
  return t, last
end

--- The value at a dotted key (raises on an unknown key).
function M.get(cfg, key)
  local t, last = locate(cfg, key)
  return t[last]
end

--- Sets one dotted key from its text; returns the value.
function M.set(cfg, key, text)
  local t, last = locate(cfg, key)
  local cur, declared = t[last], section_types(t)[last]
  if type(cur) == "table" and not is_list(cur) then
    local sub = {}
    for _, k in ipairs(M.keys(cur)) do sub[#sub + 1] = key .. "." .. k end
    error(("config: '%s' is a section; set one of its keys: %s"):format(key, table.concat(sub, ", ")), 0)
  end
  if type(text) ~= "string" then -- a typed value (from a table merge): check it against the type
    text = type(text) == "table" and table.concat(text, ",") or tostring(text)
  end
  local kind = type_of(cur, declared)
  if declared and text == "none" then t[last] = nil; return nil end
  local v, msg = M.convert(kind, text)
  if v == nil then error(("config: %s: %s"):format(key, msg), 0) end
  t[last] = v
  return v
end

--- apply(cfg, overrides) where overrides maps dotted keys to text ({["trainer.epochs"] = "5"}) or is a list of
-- {key, text} pairs (applied in order). Keys are applied sorted, so the result does not depend on table order.
-- Returns cfg (changed in place).
function M.apply(cfg, overrides)
  local pairs_list = {}
  if is_list(overrides) then
    for _, kv in ipairs(overrides) do pairs_list[#pairs_list + 1] = kv end
  else
    for k, v in pairs(overrides or {}) do pairs_list[#pairs_list + 1] = {k, v} end
    table.sort(pairs_list, function(a, b) return a[1] < b[1] end)
  end
  for _, kv in ipairs(pairs_list) do M.set(cfg, kv[1], kv[2]) end
  return cfg
end

--- merge(cfg, over, where): deep-merges the table `over` into cfg; every key of `over` must exist in cfg
-- (`where` names the source in errors). Lists and leaves are replaced; values keep cfg's types.
function M.merge(cfg, over, where)
  local function walk(dst, src, prefix)
    for k, v in pairs(src) do
      local key = prefix .. tostring(k)
      if k == "_types" then
        dst._types = dst._types or {}
        for tk, tv in pairs(v) do dst._types[tk] = tv end
      elseif type(v) == "function" then
        dst[k] = v
      elseif type(k) ~= "string" then
        error(("config: %s has a non-string key %s%s"):format(prefix ~= "" and prefix or "the table", key,
                                                                where and (" in " .. where) or ""), 0)
      elseif type(v) == "table" and not is_list(v) and type(dst[k]) == "table" and not is_list(dst[k]) then
        walk(dst[k], v, key .. ".")
      else
        if dst[k] == nil and section_types(dst)[k] == nil then unknown_key(cfg, key, where and (" in " .. where)) end
        local cur = dst[k]
        if type(cur) == "table" and not is_list(cur) then M.set(cfg, key, "") end -- raises "is a section"
        local kind = type_of(cur, section_types(dst)[k])
        local ok = kind == nil or (kind == "int" and math.type(v) == "integer")
          or (kind == "number" and type(v) == "number") or (kind == "bool" and type(v) == "boolean")
          or ((kind == "string" or kind == "path") and type(v) == "string")
          or (kind:match("^list") and is_list(v)) or (kind:match("^choice") and M.convert(kind, tostring(v)))
        if not ok then
          error(("config: %s%s: expected %s, got %s %s"):format(key, where and (" in " .. where) or "", kind,
                                                               type(v), tostring(v)), 0)
        end
        dst[k] = M.copy(v)
      end
    end
  end
  walk(cfg, over, "")
  return cfg
end

-- Lua source text of a value (numbers keep their integer/float kind and read back exactly).
local function literal(v)
  local t = type(v)
  if t == "string" then return ("%q"):format(v) end
  if t == "boolean" or v == nil then return tostring(v) end
  if t == "number" then
    if math.type(v) == "integer" then return v == math.mininteger and "math.mininteger" or ("%d"):format(v) end
    if v ~= v then return "0/0" end
    if v == math.huge then return "1/0" end
    if v == -math.huge then return "-1/0" end
    for digits = 15, 17 do
      local s = ("%." .. digits .. "g"):format(v)
      if tonumber(s) == v then return s:find("[%.eEn]") and s or (s .. ".0") end
    end
  end
  error("config: cannot write a " .. t, 0)
end

--- The config as Lua source ("return {...}"), keys sorted, every field written; functions are left out with
-- a comment saying so.
function M.dump(cfg)
  local out = {"return "}
  local function emit(v, indent)
    if type(v) ~= "table" then out[#out + 1] = literal(v); return end
    if is_list(v) then
      local items = {}
      for i, e in ipairs(v) do
        if type(e) == "table" then items = nil; break end
        items[i] = literal(e)
      end
      if items then out[#out + 1] = "{" .. table.concat(items, ", ") .. "}"; return end
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      if type(a) ~= type(b) then return type(a) == "number" end
      return a < b
    end)
    local pad = ("  "):rep(indent + 1)
    out[#out + 1] = "{\n"
    for _, k in ipairs(keys) do
      local e = v[k]
      local name = (type(k) == "string" and k:match("^[%a_][%w_]*$")) and k or ("[" .. literal(k) .. "]")
      if type(e) == "function" or type(e) == "userdata" or type(e) == "thread" then
        out[#out + 1] = pad .. "-- " .. name .. ": a " .. type(e) .. " (not written)\n"
      else
        out[#out + 1] = pad .. name .. " = "
        emit(e, indent + 1)
        out[#out + 1] = ",\n"
      end
    end
    out[#out + 1] = ("  "):rep(indent) .. "}"
  end
  emit(cfg, 0)
  out[#out + 1] = "\n"
  return table.concat(out)
end

--- Writes config.dump(cfg) to path atomically; returns path.
function M.save(cfg, path)
  require("realnet.rundir").write_atomic(path, M.dump(cfg))
  return path
end

--- Reads a config written by config.save (a file that returns a table, evaluated with only `math` in scope);
-- nil, msg when unreadable.
function M.load(path)
  local chunk, err = loadfile(path, "t", {math = math})
  if not chunk then return nil, "config: " .. err end
  local ok, t = pcall(chunk)
  if not ok then return nil, ("config: %s: %s"):format(path, tostring(t)) end
  if type(t) ~= "table" then return nil, ("config: %s does not return a table"):format(path) end
  return t
end

--- load_recipe(path, opts{scale = name, overrides = {...}, config = table}) -> cfg, run (or nil), info.
-- The recipe runs with the globals in reach (it may require realnet); a global `run` function counts as the
-- recipe's run. Order: base, then scales[scale], then opts.config (merged), then opts.overrides. info =
-- {path, scale, scales = sorted names}. cfg.scale holds the chosen scale's name when one was picked. Raises on
-- an unknown scale or key.
function M.load_recipe(path, opts)
  opts = opts or {}
  local env = setmetatable({}, {__index = _G})
  local chunk, err = loadfile(path, "t", env)
  if not chunk then error("recipe: " .. err, 0) end
  local ok, t = pcall(chunk)
  if not ok then error(("recipe: %s: %s"):format(path, tostring(t)), 0) end
  if type(t) ~= "table" then error(("recipe: %s must return a config table, got %s"):format(path, type(t)), 0) end
  local run = t.run or env.run
  if run ~= nil and type(run) ~= "function" then error(("recipe: %s: run must be a function"):format(path), 0) end
  local scales = t.scales
  local cfg = M.copy(t)
  cfg.run, cfg.scales = nil, nil
  local names = {}
  for k in pairs(scales or {}) do names[#names + 1] = k end
  table.sort(names)
  local scale = opts.scale or t.default_scale
  if scale then
    if not (scales and scales[scale]) then
      error(("recipe: %s has no scale '%s' (scales: %s)"):format(path, scale,
            #names > 0 and table.concat(names, ", ") or "none"), 0)
    end
    M.merge(cfg, scales[scale], "scales." .. scale)
    cfg.scale = scale
  end
  if opts.config then M.merge(cfg, opts.config, opts.config_name or "--config") end
  if opts.overrides then M.apply(cfg, opts.overrides) end
  return cfg, run, {path = path, scale = scale, scales = names}
end

return M
