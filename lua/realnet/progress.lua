--- realnet.progress: the progress display of long work (training, evaluation, sampling).
--
--   local progress = require "realnet.progress"
--   local bar = progress.new{total = steps, label = "train", unit = "img", terms = {"loss", "ce", "mse"}}
--   for step = 1, steps do
--     ...
--     bar:update(step, {loss = l, ce = a, mse = b}, batch)   -- batch: images done in this step
--   end
--   bar:finish()
--
-- On a terminal: one line redrawn in place with "\r" (at most every `interval` s, default 0.1):
--   train  37/100 [=======>            ]  37%  loss 0.3124  ce 0.1021  12.3 img/s  ETA 0:00:51
-- Elsewhere (a pipe, a file, CI): a plain line every `plain_interval` s (default 10) and at the end, so logs
-- stay short. `out` (default io.stdout), `tty` (default: rn.isatty(out)), `clock` (default rn.now) and
-- `sink` (a function(line) also given each plain line, e.g. a run's log) can be set for tests and run
-- directories. img/s is a moving average of recent steps; the ETA uses the mean time per step so far.
local ok_core, core = pcall(require, "realnet.core")

local M = {}

local function default_clock()
  if ok_core and core.now then return core.now() end
  return os.clock()
end

--- Seconds as H:MM:SS (or M:SS under an hour).
function M.hms(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.max(0, math.floor(s + 0.5))
  local h, m = s // 3600, (s % 3600) // 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, s % 60) end
  return ("%d:%02d"):format(m, s % 60)
end

local function fmt_num(v)
  if type(v) ~= "number" then return tostring(v) end
  if math.type(v) == "integer" then return tostring(v) end
  if v ~= v then return "nan" end
  return ("%.4g"):format(v)
end

local Bar = {}
Bar.__index = Bar
Bar.__close = function(self) self:finish() end

--- new(opts) -> a bar (see the header for the fields).
function M.new(opts)
  opts = opts or {}
  local out = opts.out or io.stdout
  local tty = opts.tty
  local real = io.type(out) == "file" -- tests pass tables with write/flush
  if tty == nil then tty = real and ok_core and core.isatty and core.isatty(out) or false end
  local self = setmetatable({
    total = opts.total, label = opts.label or "", unit = opts.unit or "it", order = opts.terms,
    out = out, tty = tty, real = real, clock = opts.clock or default_clock, sink = opts.sink,
    interval = opts.interval or 0.1, plain_interval = opts.plain_interval or 10,
    width = opts.width, step = 0, items = 0, rate = nil, shown_len = 0, done = false, terms = {}}, Bar)
  self.t0 = self.clock()
  self.last_draw, self.last_plain, self.last_t, self.last_items = -math.huge, self.t0, self.t0, 0
  return self
end

-- "name value" pairs in the bar's term order, then the rest sorted ("loss" first).
function Bar:_terms()
  local parts, seen = {}, {}
  for _, k in ipairs(self.order or {}) do
    if self.terms[k] ~= nil then parts[#parts + 1] = k .. " " .. fmt_num(self.terms[k]); seen[k] = true end
  end
  local rest = {}
  for k in pairs(self.terms) do if not seen[k] then rest[#rest + 1] = k end end
  table.sort(rest, function(a, b)
    if (a == "loss") ~= (b == "loss") then return a == "loss" end
    return tostring(a) < tostring(b)
  end)
  for _, k in ipairs(rest) do parts[#parts + 1] = tostring(k) .. " " .. fmt_num(self.terms[k]) end
  return table.concat(parts, "  ")
end

-- The status text after the counter: terms, rate, ETA (or elapsed at the end).
function Bar:_status(now, final)
  local parts = {}
  local terms = self:_terms()
  if terms ~= "" then parts[#parts + 1] = terms end
  if self.rate then parts[#parts + 1] = ("%.3g %s/s"):format(self.rate, self.unit) end
  local elapsed = now - self.t0
  if final or not self.total then
    parts[#parts + 1] = (final and "took " or "elapsed ") .. M.hms(elapsed)
  elseif self.step > 0 then
    parts[#parts + 1] = "ETA " .. M.hms(elapsed / self.step * (self.total - self.step))
  end
  return table.concat(parts, "  ")
end

function Bar:_counter()
  local label = self.label ~= "" and (self.label .. "  ") or ""
  if self.total then
    local w = #tostring(self.total)
    return ("%s%" .. w .. "d/%d"):format(label, self.step, self.total)
  end
  return ("%s%d"):format(label, self.step)
end

function Bar:_draw(now, final)
  local line
  if self.total and self.total > 0 then
    local frac = math.min(1, self.step / self.total)
    local cols = 20
    local fill = math.floor(frac * cols + 0.5)
    local bar = ("="):rep(math.max(0, fill - 1)) .. (fill > 0 and (fill == cols and "=" or ">") or "")
    line = ("%s [%-" .. cols .. "s] %3d%%  %s"):format(self:_counter(), bar, math.floor(frac * 100 + 0.5),
                                                      self:_status(now, final))
  else
    line = self:_counter() .. "  " .. self:_status(now, final)
  end
  local width = self.width or (self.real and ok_core and core.term_width and core.term_width(self.out)) or 120
  if #line > width - 1 then line = line:sub(1, width - 1) end
  local pad = math.max(0, self.shown_len - #line) -- blank what a longer previous line left
  self.out:write("\r", line, (" "):rep(pad), final and "\n" or "")
  self.out:flush()
  self.shown_len = final and 0 or #line
  self.last_draw = now
end

function Bar:_plain(now, final)
  local line = self:_counter()
  if self.total and self.total > 0 then
    line = line .. (" (%d%%)"):format(math.floor(math.min(1, self.step / self.total) * 100 + 0.5))
  end
  line = line .. "  " .. self:_status(now, final)
  if self.sink then self.sink(line) end
  if not self.tty then
    self.out:write(line, "\n")
    self.out:flush()
  end
  self.last_plain = now
end

--- update(step, terms, n): step done out of total, the latest named loss terms (a table name -> number, kept
-- until replaced), n items (images) processed since the previous update (default 1).
function Bar:update(step, terms, n)
  if self.done then return end
  local now = self.clock()
  self.step = step or (self.step + 1)
  for k, v in pairs(terms or {}) do self.terms[k] = v end
  self.items = self.items + (n or 1)
  local dt = now - self.last_t
  if dt > 0 then
    local inst = (self.items - self.last_items) / dt
    self.rate = self.rate and (0.7 * self.rate + 0.3 * inst) or inst
    self.last_t, self.last_items = now, self.items
  end
  if self.tty and now - self.last_draw >= self.interval then self:_draw(now, false) end
  if now - self.last_plain >= self.plain_interval then self:_plain(now, false) end
end

--- Advances by one step (or n items); a shortcut for update(step + 1, terms, n).
function Bar:tick(terms, n) self:update(self.step + 1, terms, n) end

--- Prints a message above the bar without garbling it (a plain print when not on a terminal).
function Bar:note(msg)
  if self.tty and self.shown_len > 0 then
    self.out:write("\r", (" "):rep(self.shown_len), "\r")
    self.shown_len = 0
  end
  self.out:write(msg, "\n")
  if self.sink then self.sink(msg) end
  if self.tty and not self.done then self:_draw(self.clock(), false) end
end

--- Ends the bar: draws the final state (with the total time) and ends the line. Idempotent.
function Bar:finish(terms)
  if self.done then return end
  for k, v in pairs(terms or {}) do self.terms[k] = v end
  local now = self.clock()
  if self.tty then self:_draw(now, true) end
  self:_plain(now, true)
  self.done = true
end

return M
