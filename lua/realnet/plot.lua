--- realnet.plot: PNG line plots and grouped bar charts through gnuplot (Debian's gnuplot-nox).
--
--   local plot = require "realnet.plot"
--   plot.lines{path = "loss.png", title = "SDAS loss", xlabel = "step", ylabel = "loss",
--              series = {{name = "train", x = {1, 2, 3}, y = {0.9, 0.5, 0.4}}}}
--   plot.bars{path = "ablation.png", title = "Table 5a", ylabel = "AUROC", groups = {"AFS", "RDR"},
--             series = {{name = "image", values = {0.91, 0.88}}, {name = "pixel", values = {0.97, 0.95}}}}
--
-- Optional fields: lines {logx, logy, ymin, ymax, width, height, points = true; per series dashed = true};
-- bars {ymin, ymax, width, height,
-- errors = {{...}, ...} (one list per series, drawn as error bars)}. The data and the gnuplot script are written
-- beside the PNG (path .. ".dat" / ".gp" are removed after a successful run) so a failed plot can be inspected.
-- Missing values (nil or NaN) are left out of line plots and drawn as empty bars. Raises with a message naming
-- the problem; when gnuplot is missing the message says how to install it (callers that only want the tables
-- pcall this and warn).
local M = {}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- A gnuplot string literal (double quotes; backslashes and quotes escaped). Text is drawn noenhanced, so
-- underscores in names stay underscores.
local function gstr(s)
  s = tostring(s or ""):gsub("\\", "\\\\"):gsub('"', '\\"')
  return '"' .. s .. '"'
end

local gnuplot_state -- nil: not probed; else {ok, terminal or msg}

--- true, terminal when gnuplot can write PNGs here; false, message otherwise. Probed once per process.
function M.available()
  if gnuplot_state then return table.unpack(gnuplot_state) end
  local f = io.popen("gnuplot -e 'set terminal' 2>&1 </dev/null")
  local out = f and f:read("a") or ""
  local ok = f and f:close()
  if not ok or out == "" then
    gnuplot_state = {false, "plot: gnuplot is not installed (Debian: apt-get install gnuplot-nox, or bash "
      .. "scripts/install-deps.sh); tables and CSV files are written without it"}
  elseif out:find("pngcairo", 1, true) then
    gnuplot_state = {true, "pngcairo"}
  elseif out:find("%f[%w]png%f[%W]") then
    gnuplot_state = {true, "png"}
  else
    gnuplot_state = {false, "plot: this gnuplot has no PNG terminal (install gnuplot-nox)"}
  end
  return table.unpack(gnuplot_state)
end

--- Forgets the probe (tests switch PATH).
function M.reset() gnuplot_state = nil end

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

local function num(v) return finite(v) and ("%.10g"):format(v) or "NaN" end

local function write(path, text)
  local f, err = io.open(path, "wb")
  if not f then error("plot: cannot write " .. path .. ": " .. tostring(err), 0) end
  f:write(text)
  f:close()
end

local function check_path(o, what)
  if type(o) ~= "table" then error("plot." .. what .. " expects a table of options", 3) end
  if type(o.path) ~= "string" or not o.path:match("%.png$") then
    error("plot." .. what .. ": path must name a .png file, got " .. tostring(o.path), 3)
  end
end

-- Runs the script; raises with gnuplot's own message on failure.
local function run(o, script, data)
  local ok, term = M.available()
  if not ok then error(term, 0) end
  local w, h = o.width or 800, o.height or 500
  local header = ("set terminal %s size %d,%d%s noenhanced\nset output %s\n"):format(term, w, h,
    term == "pngcairo" and " font 'Sans,10'" or "", gstr(o.path))
  local gp, dat = o.path .. ".gp", o.path .. ".dat"
  write(dat, data)
  write(gp, header .. (script:gsub("@DATA@", function() return gstr(dat) end)))
  local p = io.popen("gnuplot " .. q(gp) .. " 2>&1 </dev/null")
  local out = p:read("a")
  local fine = p:close()
  if not fine then error(("plot: gnuplot failed on %s: %s"):format(gp, out), 0) end
  os.remove(gp)
  os.remove(dat)
  return o.path
end

local function axes(o)
  local s = {("set title %s\n"):format(gstr(o.title)), ("set xlabel %s\n"):format(gstr(o.xlabel)),
             ("set ylabel %s\n"):format(gstr(o.ylabel)), "set grid ytics\n", "set key outside right top\n"}
  if o.ymin or o.ymax then s[#s + 1] = ("set yrange [%s:%s]\n"):format(o.ymin and num(o.ymin) or "*",
    o.ymax and num(o.ymax) or "*") end
  return table.concat(s)
end

--- plot.lines{path, title, xlabel, ylabel, series = {{name, x = {...}, y = {...}}, ...}} -> path.
function M.lines(o)
  check_path(o, "lines")
  if type(o.series) ~= "table" or #o.series == 0 then error("plot.lines: series must be a non-empty list", 2) end
  local blocks, plots = {}, {}
  for i, s in ipairs(o.series) do
    if type(s.x) ~= "table" or type(s.y) ~= "table" or #s.x ~= #s.y then
      error(("plot.lines: series %d (%s) needs lists x and y of the same length"):format(i, tostring(s.name)), 2)
    end
    local rows = {}
    for k = 1, #s.x do
      if finite(s.x[k]) and finite(s.y[k]) then rows[#rows + 1] = num(s.x[k]) .. " " .. num(s.y[k]) end
    end
    if #rows == 0 then rows[1] = "NaN NaN" end -- gnuplot rejects an empty block
    blocks[#blocks + 1] = table.concat(rows, "\n")
    plots[#plots + 1] = ("@DATA@ index %d using 1:2 with %s lw 2%s title %s"):format(i - 1,
      (o.points == false or s.dashed) and "lines" or "linespoints", s.dashed and " dt 2" or "",
      gstr(s.name or ("series " .. i)))
  end
  local script = axes(o) .. (o.logx and "set logscale x\n" or "") .. (o.logy and "set logscale y\n" or "")
    .. "plot " .. table.concat(plots, ", \\\n     ") .. "\n"
  return run(o, script, table.concat(blocks, "\n\n\n") .. "\n")
end

--- plot.bars{path, title, ylabel, groups = {...}, series = {{name, values = {...}}, ...}} -> path: one cluster
-- per group, one bar per series.
function M.bars(o)
  check_path(o, "bars")
  if type(o.groups) ~= "table" or #o.groups == 0 then error("plot.bars: groups must be a non-empty list", 2) end
  if type(o.series) ~= "table" or #o.series == 0 then error("plot.bars: series must be a non-empty list", 2) end
  for i, s in ipairs(o.series) do
    if type(s.values) ~= "table" then error(("plot.bars: series %d needs values"):format(i), 2) end
  end
  local errs = o.errors
  local rows = {}
  for g, name in ipairs(o.groups) do
    local cells = {gstr(name)}
    for i, s in ipairs(o.series) do
      cells[#cells + 1] = num(s.values[g])
      if errs then cells[#cells + 1] = num(errs[i] and errs[i][g] or 0) end
    end
    rows[#rows + 1] = table.concat(cells, " ")
  end
  local per = errs and 2 or 1
  local plots = {}
  for i, s in ipairs(o.series) do
    local col = 1 + (i - 1) * per + 1
    local using = errs and ("%d:%d:xtic(1)"):format(col, col + 1) or ("%d:xtic(1)"):format(col)
    plots[i] = ("@DATA@ using %s title %s"):format(using, gstr(s.name or ("series " .. i)))
  end
  local script = axes(o) .. "set style data histogram\n"
    .. (errs and "set style histogram errorbars gap 1 lw 1\n" or "set style histogram clustered gap 1\n")
    .. "set style fill solid 0.85 border -1\nset boxwidth 0.9\nset xtics rotate by -30\n"
    .. ((o.ymin or o.ymax) and "" or "set yrange [0:*]\n")
    .. "plot " .. table.concat(plots, ", \\\n     ") .. "\n"
  return run(o, script, table.concat(rows, "\n") .. "\n")
end

return M
