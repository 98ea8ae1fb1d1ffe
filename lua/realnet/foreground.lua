--- realnet.foreground: RealNet's per-category foreground rules (spec 3.3) as data, and the rule grammar.
--
--   local fg = require "realnet.foreground"
--   fg.lookup("bottle")                 --> {method = "otsu", channel = "gray", dark = true, close = 6, open = 6}
--   fg.parse("triangle_blue_bright_c8_o3")
--   fg.lookup("my_part", nil, {my_part = "otsu_dark_c6"})   -- a recipe's own table first
--
-- A rule is {method = "none"|"otsu"|"triangle", channel = "gray"|"red"|"green"|"blue", dark = bool,
-- close = n, open = n} (0 skips a morphology step). Thresholds follow cv2 (bright = value > T); closing
-- then opening use n x n squares. A string rule reads <method>[_<channel>]_<dark|bright>[_c<n>][_o<n>],
-- or "none" / "all" for no restriction.
local M = {}

local function rule(method, channel, dark, close, open)
  return {method = method, channel = channel, dark = dark, close = close, open = open}
end

local ALL = rule("none", "gray", false, 0, 0)

--- The table of spec 3.3, keyed by dataset then category. Edit a copy (or pass your own to lookup) to override.
M.table = {
  mvtec = {
    carpet = ALL, leather = ALL, tile = ALL, wood = ALL, cable = ALL, transistor = ALL,
    pill = rule("otsu", "gray", false, 6, 6),
    hazelnut = rule("triangle", "gray", false, 6, 6),
    metal_nut = rule("triangle", "gray", false, 6, 6),
    toothbrush = rule("triangle", "gray", false, 6, 6),
    bottle = rule("otsu", "gray", true, 6, 6),
    capsule = rule("otsu", "gray", true, 6, 6),
    grid = rule("otsu", "gray", true, 6, 6),
    screw = rule("otsu", "gray", true, 6, 6),
    zipper = rule("otsu", "gray", true, 6, 6),
  },
  visa = {
    capsules = ALL,
    pcb1 = rule("triangle", "blue", false, 8, 3),
    pcb2 = rule("triangle", "blue", false, 8, 3),
    pcb3 = rule("triangle", "blue", false, 8, 3),
    pcb4 = rule("triangle", "blue", false, 8, 3),
    candle = rule("otsu", "gray", false, 3, 3),
    cashew = rule("otsu", "gray", false, 3, 3),
    chewinggum = rule("otsu", "gray", false, 3, 3),
    fryum = rule("otsu", "gray", false, 3, 3),
    macaroni1 = rule("otsu", "gray", false, 3, 3),
    macaroni2 = rule("otsu", "gray", false, 3, 3),
    pipe_fryum = rule("otsu", "gray", false, 3, 3),
  },
  mpdd = {
    bracket_black = rule("otsu", "green", true, 6, 0),
    bracket_brown = rule("otsu", "green", true, 6, 0),
    connector = rule("otsu", "green", true, 6, 0),
    bracket_white = rule("otsu", "blue", false, 6, 0),
    tubes = rule("otsu", "blue", false, 6, 0),
    metal_plate = rule("otsu", "gray", true, 6, 0),
  },
  btad = {
    ["01"] = rule("otsu", "gray", false, 15, 6),
    ["02"] = ALL,
    ["03"] = rule("otsu", "gray", false, 15, 6),
  },
}

local CHANNELS = {gray = -1, red = 0, green = 1, blue = 2, r = 0, g = 1, b = 2}
local CHANNEL_NAMES = {[-1] = "gray", [0] = "red", [1] = "green", [2] = "blue"}

local function copy(r)
  local o = {}
  for k, v in pairs(r) do o[k] = v end
  return o
end

--- Parses a rule string (see above) into a rule table; nil, msg when it does not read.
function M.parse(s)
  if s == "none" or s == "all" then return copy(ALL) end
  local r = rule(nil, "gray", nil, 0, 0)
  for part in s:gmatch("[^_]+") do
    if part == "otsu" or part == "triangle" then
      if r.method then return nil, ("foreground '%s': two methods"):format(s) end
      r.method = part
    elseif CHANNELS[part] then
      r.channel = part
    elseif part == "dark" or part == "bright" then
      r.dark = part == "dark"
    elseif part:match("^c%d+$") then
      r.close = tonumber(part:sub(2))
    elseif part:match("^o%d+$") then
      r.open = tonumber(part:sub(2))
    else
      return nil, ("foreground '%s': unknown part '%s' (expected otsu|triangle, gray|red|green|blue, "
        .. "dark|bright, c<n>, o<n>)"):format(s, part)
    end
  end
  if not r.method then return nil, ("foreground '%s': no method (otsu or triangle)"):format(s) end
  r.dark = r.dark or false
  return r
end

--- A rule table from a string, a table, or false/nil ("none"); raises with a clear message when malformed.
function M.normalize(spec)
  if spec == nil or spec == false then return copy(ALL) end
  if type(spec) == "string" then
    local r, err = M.parse(spec)
    if not r then error(err, 2) end
    return r
  end
  if type(spec) ~= "table" then error("foreground must be a string, a rule table or false", 2) end
  local r = rule(spec.method or "otsu", spec.channel or "gray", spec.dark, spec.close or 0, spec.open or 0)
  if spec.bright ~= nil and spec.dark == nil then r.dark = not spec.bright end
  r.dark = r.dark and true or false
  if r.method ~= "none" and r.method ~= "otsu" and r.method ~= "triangle" then
    error(("foreground method must be none, otsu or triangle, not '%s'"):format(tostring(r.method)), 2)
  end
  if type(r.channel) == "number" then r.channel = CHANNEL_NAMES[r.channel] or r.channel end
  if not CHANNELS[r.channel] then
    error(("foreground channel must be gray, red, green or blue, not '%s'"):format(tostring(r.channel)), 2)
  end
  return r
end

--- The C form of a rule (channel as -1..2).
function M.to_core(r)
  r = M.normalize(r)
  return {method = r.method, channel = CHANNELS[r.channel], dark = r.dark, close = r.close, open = r.open}
end

--- A short text of a rule, e.g. "otsu gray dark close 6 open 6".
function M.describe(r)
  r = M.normalize(r)
  if r.method == "none" then return "none (all pixels)" end
  local s = ("%s %s %s"):format(r.method, r.channel, r.dark and "dark" or "bright")
  if r.close > 0 then s = s .. " close " .. r.close end
  if r.open > 0 then s = s .. " open " .. r.open end
  return s
end

--- The rule of a category: from `override` (a table category -> rule, or dataset -> category -> rule) first,
-- then M.table (under `dataset` when given, else any dataset). Returns rule, or nil and a warning text when
-- the category is unknown (the caller then uses no restriction).
function M.lookup(category, dataset, override)
  local function find(tbl)
    if not tbl then return nil end
    if tbl[category] ~= nil and (type(tbl[category]) ~= "table" or tbl[category].method or tbl[category].channel) then
      return tbl[category]
    end
    if dataset and type(tbl[dataset]) == "table" and tbl[dataset][category] ~= nil then return tbl[dataset][category] end
    if not dataset then
      local names = {}
      for name in pairs(tbl) do names[#names + 1] = name end
      table.sort(names)
      for _, name in ipairs(names) do
        local t = tbl[name]
        if type(t) == "table" and not t.method and t[category] ~= nil then return t[category] end
      end
    end
  end
  local r = find(override)
  if r == nil then r = find(M.table) end
  if r == nil then
    return nil, ("no foreground rule for category '%s'%s; synthetic anomalies are not restricted to a foreground "
      .. "(pass foreground = ... to choose one)"):format(tostring(category), dataset and (" of " .. dataset) or "")
  end
  return M.normalize(r)
end

return M
