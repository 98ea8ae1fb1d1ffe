--- realnet.rundir: the run directory (runs/<name>/) and its text outputs: log.txt, config.lua, metrics.json,
-- metrics.csv, scores.csv. Every file is written to a temporary name and renamed, so a crash never leaves a
-- half-written output.
--
--   local rundir = require "realnet.rundir"
--   local run <close> = rundir.create{root = "runs", name = o.out}  -- name default: 20240501-120301
--   print("training bottle")              -- printed and appended to log.txt with the time, until run:close()
--   run:save_config(cfg)                  -- config.lua, every field written out
--   local bar = run:progress{total = n, label = "train"}  -- its plain lines go to log.txt too
--   run:write_json("metrics.json", metrics, {order = {"image_auroc", "pixel_auroc"}})
--   run:write_csv("metrics.csv", {"category", "image_auroc"}, {{category = "bottle", image_auroc = 0.99}})
--   local scores <close> = run:csv("scores.csv", {"path", "score", "label"}); scores:row{path = p, score = s}
--
-- rundir.open(dir) reopens an existing run (eval, predict) and appends to its log. CSV fields are quoted as
-- RFC 4180 says (commas, quotes, line breaks, outer spaces); numbers keep their shortest exact text, NaN/inf
-- are written nan/inf/-inf. JSON NaN/inf become null with a warning on stderr and in the log.
local ok_core, core = pcall(require, "realnet.core")
local json = require "realnet.json"

local M = {}

local function file_type(p)
  if ok_core and core.file_type then return core.file_type(p) end
  local f = io.open(p, "r")
  if f then f:close(); return "file" end
  return nil
end

--- Makes a directory and its parents; returns path; raises naming the path on failure.
function M.mkdir(path)
  if file_type(path) == "directory" then return path end
  if not (ok_core and core.mkdir) then
    local q = "'" .. path:gsub("'", "'\\''") .. "'"
    if not os.execute("mkdir -p " .. q) then error("rundir: cannot create directory " .. path, 0) end
    return path
  end
  local prefix = path:sub(1, 1) == "/" and "/" or ""
  for part in path:gmatch("[^/]+") do
    prefix = prefix .. part
    if file_type(prefix) ~= "directory" then
      local ok, msg = core.mkdir(prefix)
      if not ok then error("rundir: " .. msg, 0) end
    end
    prefix = prefix .. "/"
  end
  return path
end

--- The whole content of a file, or nil, msg when it cannot be opened.
function M.read_text(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  return text
end

--- A JSON file holding an object, decoded; nil when it is missing or not such a file (a run's optional records).
function M.read_json(path)
  local text = M.read_text(path)
  if not text then return nil end
  local ok, v = pcall(json.decode, text)
  return ok and type(v) == "table" and v or nil
end

local tmp_counter = 0
--- Writes text to path through a temporary file and a rename (atomic on POSIX); raises on failure.
function M.write_atomic(path, text)
  tmp_counter = tmp_counter + 1
  local tmp = ("%s.tmp%d-%d"):format(path, tmp_counter, math.random(1 << 30))
  local f, err = io.open(tmp, "wb")
  if not f then error("rundir: cannot write " .. path .. ": " .. err, 0) end
  local ok, werr = f:write(text)
  local cok, cerr = f:close()
  if not ok or not cok then
    os.remove(tmp)
    error("rundir: cannot write " .. path .. ": " .. tostring(werr or cerr), 0)
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    error("rundir: cannot rename onto " .. path .. ": " .. tostring(rerr), 0)
  end
  return path
end

--- One CSV field: numbers in their shortest exact text, nil empty, quoted when it holds , " CR LF or outer
-- spaces.
function M.csv_field(v)
  if v == nil then return "" end
  if type(v) == "number" then
    if v ~= v then return "nan" end
    if v == math.huge then return "inf" end
    if v == -math.huge then return "-inf" end
    return json.number(v)
  end
  local s = tostring(v)
  if s:find('[,"\r\n]') or s:match("^%s") or s:match("%s$") then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

--- One CSV line (with "\n") from a list of values, or from a map and the column names.
function M.csv_line(values, columns)
  local parts = {}
  if columns then
    for i, c in ipairs(columns) do parts[i] = M.csv_field(values[c] == nil and values[i] or values[c]) end
  else
    for i = 1, #values do parts[i] = M.csv_field(values[i]) end
  end
  return table.concat(parts, ",") .. "\n"
end

local Writer = {}
Writer.__index = Writer
Writer.__close = function(self) self:close() end

--- csv_writer(path, columns) -> writer with :row(values) (a map by column or a list) and :close() (which
-- renames the finished file into place). Rows are written as they come.
function M.csv_writer(path, columns)
  tmp_counter = tmp_counter + 1
  local tmp = ("%s.tmp%d-%d"):format(path, tmp_counter, math.random(1 << 30))
  local f, err = io.open(tmp, "wb")
  if not f then error("rundir: cannot write " .. path .. ": " .. err, 0) end
  f:write(M.csv_line(columns))
  return setmetatable({path = path, tmp = tmp, f = f, columns = columns, rows = 0}, Writer)
end

function Writer:row(values)
  if not self.f then error("rundir: " .. self.path .. " is closed", 2) end
  self.f:write(M.csv_line(values, self.columns))
  self.rows = self.rows + 1
end

function Writer:close()
  if not self.f then return self.path end
  local ok, err = self.f:close()
  self.f = nil
  if ok then ok, err = os.rename(self.tmp, self.path) end
  if not ok then
    os.remove(self.tmp)
    error("rundir: cannot write " .. self.path .. ": " .. tostring(err), 0)
  end
  return self.path
end

--- Writes a whole CSV file atomically (rows: maps by column or lists).
function M.write_csv(path, columns, rows)
  local parts = {M.csv_line(columns)}
  for _, r in ipairs(rows) do parts[#parts + 1] = M.csv_line(r, columns) end
  return M.write_atomic(path, table.concat(parts))
end

--- Reads a CSV file written by these writers: the header and the rows as lists of strings.
function M.read_csv(path)
  local text, err = M.read_text(path)
  if not text then return nil, err end
  local rows, row, field, i, quoted = {}, {}, {}, 1, false
  while i <= #text do
    local c = text:sub(i, i)
    if quoted then
      if c == '"' and text:sub(i + 1, i + 1) == '"' then field[#field + 1] = '"'; i = i + 1
      elseif c == '"' then quoted = false
      else field[#field + 1] = c end
    elseif c == '"' then quoted = true
    elseif c == "," then row[#row + 1] = table.concat(field); field = {}
    elseif c == "\n" then row[#row + 1] = table.concat(field); field = {}; rows[#rows + 1] = row; row = {}
    elseif c ~= "\r" then field[#field + 1] = c end
    i = i + 1
  end
  if #field > 0 or #row > 0 then row[#row + 1] = table.concat(field); rows[#rows + 1] = row end
  return table.remove(rows, 1), rows
end

-- --------------------------------------------------------------------------------------------- runs

local Run = {}
Run.__index = Run
Run.__close = function(self) self:close() end

local function stamp() return os.date("%Y-%m-%d %H:%M:%S") end

local function open_run(dir, opts)
  local log, err = io.open(dir .. "/log.txt", "a")
  if not log then error("rundir: cannot open " .. dir .. "/log.txt: " .. err, 0) end
  log:setvbuf("line")
  local self = setmetatable({dir = dir, logf = log, name = dir:match("([^/]+)/*$")}, Run)
  if opts.tee ~= false then
    self.saved_print = print
    local inner = print
    _G.print = function(...) -- print as usual, and the same text into the log
      inner(...)
      local n, parts = select("#", ...), {}
      for i = 1, n do parts[i] = tostring((select(i, ...))) end
      self:write_log(table.concat(parts, "\t"))
    end
    self.tee_print = _G.print
  end
  return self
end

--- create(opts{root = "runs", name = NAME, dir = PATH, tee = true}) -> run. `dir` (or root/name) may exist
-- already (a resumed run); without either a fresh timestamped name under root is used.
function M.create(opts)
  opts = opts or {}
  local dir = opts.dir
  if not dir then
    local root = opts.root or "runs"
    if opts.name then
      dir = root .. "/" .. opts.name
    else
      local base = root .. "/" .. os.date("%Y%m%d-%H%M%S")
      dir = base
      local k = 1
      while file_type(dir) do k = k + 1; dir = base .. "-" .. k end
    end
  end
  dir = dir:gsub("(.)/+$", "%1")
  if file_type(dir) and file_type(dir) ~= "directory" then error("rundir: " .. dir .. " is not a directory", 0) end
  M.mkdir(dir)
  return open_run(dir, opts)
end

--- open(dir, opts{tee = true}) -> run for an existing run directory; nil, msg when it does not exist.
function M.open(dir, opts)
  dir = dir:gsub("(.)/+$", "%1")
  if file_type(dir) ~= "directory" then return nil, "rundir: no run directory " .. dir end
  return open_run(dir, opts or {})
end

--- view(dir) -> run for a directory another process writes (a data-parallel rank other than 0): paths,
-- progress (plain lines, never a redrawn bar: several ranks may share a terminal) and messages on this
-- process's own output, but no log.txt and no print tee.
function M.view(dir)
  return setmetatable({dir = dir:gsub("(.)/+$", "%1"), name = dir:match("([^/]+)/*$"), plain = true}, Run)
end

--- The path of a file in the run ("a", "b" -> dir/a/b).
function Run:path(...)
  local parts = {self.dir, ...}
  return table.concat(parts, "/")
end

--- Makes a sub-directory (and parents) of the run; returns its path.
function Run:subdir(...) return M.mkdir(self:path(...)) end

--- Appends text (each line stamped with the time) to log.txt only.
function Run:write_log(text)
  if not self.logf then return end
  local t = stamp()
  for line in (tostring(text) .. "\n"):gmatch("(.-)\n") do self.logf:write(t, "  ", line, "\n") end
end

--- Prints a formatted message and logs it.
function Run:log(fmt, ...)
  local msg = select("#", ...) > 0 and fmt:format(...) or tostring(fmt)
  io.stdout:write(msg, "\n")
  self:write_log(msg)
end

--- A warning on stderr and in the log.
function Run:warn(msg)
  io.stderr:write("warning: ", msg, "\n")
  self:write_log("warning: " .. msg)
end

--- Writes a text file of the run atomically; returns its path.
function Run:write_text(name, text) return M.write_atomic(self:path(name), text) end

--- Writes a JSON file (json.encode opts; indent 2 by default); NaN/inf warnings go to stderr and the log.
function Run:write_json(name, value, opts)
  local o = {indent = 2, warn = function(msg) self:warn(msg) end}
  for k, v in pairs(opts or {}) do o[k] = v end
  return M.write_atomic(self:path(name), json.encode(value, o) .. "\n")
end

function Run:write_csv(name, columns, rows) return M.write_csv(self:path(name), columns, rows) end
function Run:csv(name, columns) return M.csv_writer(self:path(name), columns) end

--- Writes config.lua (or name) with every field of cfg.
function Run:save_config(cfg, name)
  return M.write_atomic(self:path(name or "config.lua"), require("realnet.config").dump(cfg))
end

--- A progress bar (realnet.progress) whose plain lines also go to the log.
function Run:progress(opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.sink = function(line) self:write_log(line) end
  if self.plain then o.tty = false end
  return require("realnet.progress").new(o)
end

--- Stops the tee and closes the log. Idempotent.
function Run:close()
  if self.saved_print and _G.print == self.tee_print then _G.print = self.saved_print end
  self.saved_print = nil
  if self.logf then self.logf:close(); self.logf = nil end
end

return M
