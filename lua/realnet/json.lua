--- realnet.json: JSON text for run outputs (metrics.json, predict's JSON lines) and a reader for them.
--
--   local json = require "realnet.json"
--   json.encode({image_auroc = 0.981, flags = {"last_epoch"}})   --> {"flags":["last_epoch"],"image_auroc":0.981}
--   json.encode(t, {indent = 2, order = {"image_auroc", "pixel_auroc"}})  -- listed keys first, the rest sorted
--   json.decode('{"a": [1, 2.5, null]}')                            --> {a = {1, 2.5, json.null}}
--
-- Keys come out in a stable order (opts.order first, then sorted), so equal tables give equal text. NaN and
-- +-inf have no JSON form: they are written as null and reported through opts.warn (default: a line on
-- stderr naming the key). A table is an array when its keys are exactly 1..n; mark an empty table with
-- json.array(t) to write [] instead of {}. Numbers keep the shortest text that reads back to the same double.
local M = {}

M.null = setmetatable({}, {__tostring = function() return "null" end, __name = "json.null"})
local ARRAY = setmetatable({}, {__mode = "k"})

--- Marks t (usually empty) to be written as a JSON array; returns t.
function M.array(t) ARRAY[t] = true; return t end

local ESC = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
             ["\t"] = "\\t"}

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return ESC[c] or ("\\u%04x"):format(c:byte()) end) .. '"'
end

--- The shortest "%.Ng" text of a float that reads back exactly (integral floats keep no ".0": JSON has one
-- number type).
function M.number(x)
  if math.type(x) == "integer" then return ("%d"):format(x) end
  for digits = 15, 17 do
    local s = ("%." .. digits .. "g"):format(x)
    if tonumber(s) == x then return s end
  end
  return ("%.17g"):format(x)
end

local function is_array(t)
  if ARRAY[t] then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local function sorted_keys(t, order)
  local keys, seen = {}, {}
  for _, k in ipairs(order or {}) do
    if t[k] ~= nil then keys[#keys + 1] = k; seen[k] = true end
  end
  local rest = {}
  for k in pairs(t) do
    if not seen[k] then
      if type(k) ~= "string" and math.type(k) ~= "integer" then
        error("json: keys must be strings or integers, got " .. type(k), 0)
      end
      rest[#rest + 1] = k
    end
  end
  table.sort(rest, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return keys
end

--- encode(value, opts{indent = N, order = {key...}, warn = function(msg)}) -> text. Functions, userdata and
-- cycles raise naming the path of the value.
function M.encode(value, opts)
  opts = opts or {}
  local indent = opts.indent and (" "):rep(opts.indent) or nil
  local i_sep = " " -- scalar arrays stay on one line: [1, 2, 3]
  local warn = opts.warn or function(msg) io.stderr:write("warning: ", msg, "\n") end
  local out, active = {}, {}

  local function emit(v, path, depth)
    local tv = type(v)
    if v == nil or v == M.null then
      out[#out + 1] = "null"
    elseif tv == "boolean" then
      out[#out + 1] = tostring(v)
    elseif tv == "number" then
      if v ~= v or v == math.huge or v == -math.huge then
        warn(("json: %s is %s, written as null"):format(path, v ~= v and "NaN" or (v > 0 and "inf" or "-inf")))
        out[#out + 1] = "null"
      else
        out[#out + 1] = M.number(v)
      end
    elseif tv == "string" then
      out[#out + 1] = quote(v)
    elseif tv == "table" then
      if active[v] then error("json: " .. path .. " contains itself", 0) end
      active[v] = true
      local nl = indent and ("\n" .. indent:rep(depth + 1)) or ""
      local close_nl = indent and ("\n" .. indent:rep(depth)) or ""
      local flat = indent ~= nil and is_array(v)
      for i = 1, flat and #v or 0 do if type(v[i]) == "table" and v[i] ~= M.null then flat = false end end
      if flat then nl, close_nl = i_sep, "" end
      if is_array(v) then
        out[#out + 1] = "["
        for i = 1, #v do
          out[#out + 1] = (i > 1 and ("," .. nl) or (flat and "" or nl))
          emit(v[i], path .. "[" .. i .. "]", depth + 1)
        end
        out[#out + 1] = (#v > 0 and close_nl or "") .. "]"
      else
        local keys = sorted_keys(v, depth == 0 and opts.order or nil)
        out[#out + 1] = "{"
        for i, k in ipairs(keys) do
          out[#out + 1] = (i > 1 and "," or "") .. nl .. quote(tostring(k)) .. (indent and ": " or ":")
          emit(v[k], path .. "." .. tostring(k), depth + 1)
        end
        out[#out + 1] = (#keys > 0 and close_nl or "") .. "}"
      end
      active[v] = nil
    else
      error(("json: %s is a %s, which JSON cannot hold"):format(path, tv), 0)
    end
  end

  emit(value, "value", 0)
  return table.concat(out)
end

--- decode(text) -> value; null becomes json.null (so arrays keep their length). Raises "json: ... at byte N".
function M.decode(text)
  local pos = 1
  local function fail(msg) error(("json: %s at byte %d"):format(msg, pos), 0) end
  local function skip() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local value

  local function str()
    local parts = {}
    pos = pos + 1
    while true do
      local s, e, chunk, stop = text:find('^([^"\\]*)(["\\])', pos)
      if not s then fail("unterminated string") end
      parts[#parts + 1] = chunk
      pos = e + 1
      if stop == '"' then break end
      local c = text:sub(pos, pos)
      local simple = ({b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/"})[c]
      if simple then
        parts[#parts + 1] = simple
        pos = pos + 1
      elseif c == "u" then
        local hex = text:match("^%x%x%x%x", pos + 1)
        if not hex then fail("bad \\u escape") end
        local cp = tonumber(hex, 16)
        pos = pos + 5
        local lo = cp >= 0xD800 and cp < 0xDC00 and text:match("^\\u(%x%x%x%x)", pos)
        if lo then -- a UTF-16 surrogate pair
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (tonumber(lo, 16) - 0xDC00)
          pos = pos + 6
        end
        parts[#parts + 1] = utf8.char(cp)
      else
        fail("bad escape \\" .. c)
      end
    end
    return table.concat(parts)
  end

  function value()
    skip()
    local c = text:sub(pos, pos)
    if c == "{" then
      local t = {}
      pos = pos + 1
      skip()
      if text:sub(pos, pos) == "}" then pos = pos + 1; return t end
      while true do
        skip()
        if text:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = str()
        skip()
        if text:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        t[k] = value()
        skip()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return t end
        if d ~= "," then pos = pos - 1; fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      local t = M.array({})
      pos = pos + 1
      skip()
      if text:sub(pos, pos) == "]" then pos = pos + 1; return t end
      while true do
        t[#t + 1] = value()
        skip()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return t end
        if d ~= "," then pos = pos - 1; fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    end
    for word, v in pairs{["true"] = true, ["false"] = false, null = M.null} do
      if text:sub(pos, pos + #word - 1) == word then pos = pos + #word; return v end
    end
    local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if num and num ~= "" then
      pos = pos + #num
      return math.tointeger(tonumber(num)) or tonumber(num) or fail("bad number " .. num)
    end
    fail(c == "" and "unexpected end" or ("unexpected '" .. c .. "'"))
  end

  local v = value()
  skip()
  if pos <= #text then fail("trailing text") end
  return v
end

return M
