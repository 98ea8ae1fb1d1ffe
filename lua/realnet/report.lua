--- realnet.report: result tables of recipes and run comparisons as Markdown and CSV, and mean ± std over seeds.
--
--   local report = require "realnet.report"
--   local tbl = {title = "Table 5a", key = "variant", columns = {"variant", "image_auroc", "pixel_auroc"},
--                rows = {{variant = "afs+rrs", image_auroc = 0.91, pixel_auroc = 0.97}}}
--   print(report.markdown(tbl))
--   report.write("runs/x", "table", tbl)                    -- runs/x/table.md and runs/x/table.csv
--   local agg = report.aggregate({rows_seed1, rows_seed2}, "variant", {"image_auroc"})  -- mean, image_auroc_std
--
-- Numbers are shown with 4 decimals (counts as integers; columns named seconds or *_s with 1 and 2); a row
-- holding <col>_std shows "mean ± std" in Markdown and writes both columns to the CSV. Missing values show as
-- "-" in Markdown and stay empty in the CSV.
local rundir = require "realnet.rundir"
local json = require "realnet.json"

local M = {}

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

--- Digits after the point for a column.
function M.digits(col)
  if col == "seconds" then return 1 end
  if col:match("_s$") or col:match("_m$") or col:match("_mb$") then return 2 end
  return 4
end

-- Columns whose integers are counts (shown without decimals); elsewhere a JSON round trip may have turned
-- 1.0 into 1, which must still read as a score.
M.COUNTS = {n = true, epoch = true, epochs = true, seed = true, images = true, n_images = true, n_anomalous = true}

--- One Markdown cell of row[col].
function M.cell(row, col)
  local v, sd = row[col], row[col .. "_std"]
  if v == nil then return "-" end
  if type(v) == "boolean" then return v and "yes" or "no" end
  if type(v) ~= "number" then return (tostring(v):gsub("|", "\\|")) end
  if not finite(v) then return tostring(v) end
  if math.type(v) == "integer" and sd == nil and M.COUNTS[col] then return tostring(v) end
  local f = "%." .. M.digits(col) .. "f"
  local s = f:format(v)
  if sd ~= nil then s = s .. " ± " .. f:format(sd) end
  return s
end

--- The table as Markdown: an optional "### title" line, the header, one line per row, notes below. Columns
-- holding numbers are right-aligned (tbl.align, a list of "---" / "---:", overrides).
function M.markdown(tbl)
  local out = {}
  if tbl.title then out[#out + 1] = "### " .. tbl.title; out[#out + 1] = "" end
  local cols = tbl.columns
  out[#out + 1] = "| " .. table.concat(cols, " | ") .. " |"
  local align = tbl.align or {}
  for i, c in ipairs(tbl.align and {} or cols) do
    local numeric = false
    for _, r in ipairs(tbl.rows) do if type(r[c]) == "number" then numeric = true; break end end
    align[i] = numeric and "---:" or "---"
  end
  out[#out + 1] = "|" .. table.concat(align, "|") .. "|"
  for _, r in ipairs(tbl.rows) do
    local cells = {}
    for i, c in ipairs(cols) do cells[i] = M.cell(r, c) end
    out[#out + 1] = "| " .. table.concat(cells, " | ") .. " |"
  end
  for _, n in ipairs(tbl.notes or {}) do
    if _ == 1 then out[#out + 1] = "" end
    out[#out + 1] = "- " .. n
  end
  return table.concat(out, "\n") .. "\n"
end

--- The CSV columns of a table: each column, and <col>_std beside it when some row has one.
function M.csv_columns(tbl)
  local out = {}
  for _, c in ipairs(tbl.columns) do
    out[#out + 1] = c
    for _, r in ipairs(tbl.rows) do
      if r[c .. "_std"] ~= nil then out[#out + 1] = c .. "_std"; break end
    end
  end
  if tbl.rows[1] and tbl.rows[1].n ~= nil then out[#out + 1] = "n" end
  return out
end

--- Writes dir/name.md and dir/name.csv; returns both paths.
function M.write(dir, name, tbl)
  local md = rundir.write_atomic(dir .. "/" .. name .. ".md", M.markdown(tbl))
  local rows = {}
  for i, r in ipairs(tbl.rows) do
    local row = {}
    for k, v in pairs(r) do row[k] = type(v) == "boolean" and (v and "yes" or "no") or v end
    rows[i] = row
  end
  local csv = rundir.write_csv(dir .. "/" .. name .. ".csv", M.csv_columns(tbl), rows)
  return md, csv
end

--- Mean and sample standard deviation (n - 1; 0 for one value) of the finite numbers of a list.
function M.mean_std(list)
  local n, s = 0, 0
  for _, v in ipairs(list) do if finite(v) then n = n + 1; s = s + v end end
  if n == 0 then return nil, nil, 0 end
  local mean, ss = s / n, 0
  for _, v in ipairs(list) do if finite(v) then ss = ss + (v - mean) ^ 2 end end
  return mean, n > 1 and math.sqrt(ss / (n - 1)) or 0, n
end

--- Rows of several runs (a list of row lists, one per seed) merged by row[key], in the first run's order:
-- the metric columns become their mean with <col>_std beside; other fields (descriptive columns such as a
-- swept value) keep the first run's value; n = runs that had the row.
function M.aggregate(runs, key, metrics)
  local order, by = {}, {}
  for _, rows in ipairs(runs) do
    for _, r in ipairs(rows) do
      local k = r[key]
      if by[k] == nil then by[k] = {}; order[#order + 1] = k end
      table.insert(by[k], r)
    end
  end
  local out = {}
  for _, k in ipairs(order) do
    local group = by[k]
    local row = {}
    for f, v in pairs(group[1]) do row[f] = v end
    for _, c in ipairs(metrics) do
      local vals, any = {}, false
      for i, r in ipairs(group) do vals[i] = r[c]; any = any or type(r[c]) == "number" end
      if any then row[c], row[c .. "_std"] = M.mean_std(vals) end
    end
    row.n = #group
    out[#out + 1] = row
  end
  return out
end

--- A comparison table of entries {{label, metrics = {name -> number}}, ...} over the metric names: each value,
-- and its difference to the first entry as <metric>_delta (shown as "0.9123 (+0.0100)" in Markdown).
function M.compare(entries, metrics)
  local cols = {"run"}
  for _, m in ipairs(metrics) do cols[#cols + 1] = m end
  local rows, ref = {}, entries[1] and entries[1].metrics or {}
  for i, e in ipairs(entries) do
    local row = {run = e.label}
    for _, m in ipairs(metrics) do
      local v = e.metrics[m]
      row[m] = v
      if i > 1 and type(v) == "number" and type(ref[m]) == "number" then row[m .. "_delta"] = v - ref[m] end
    end
    rows[i] = row
  end
  local tbl = {columns = cols, rows = rows}
  -- Markdown shows deltas inline; the CSV keeps them as their own columns
  tbl.markdown = function()
    local shown = {}
    for i, r in ipairs(rows) do
      local s = {run = r.run}
      for _, m in ipairs(metrics) do
        local c = M.cell(r, m)
        local d = r[m .. "_delta"]
        if d then c = c .. (" (%+." .. M.digits(m) .. "f)"):format(d) end
        s[m] = c
      end
      shown[i] = s
    end
    local align = {"---"}
    for i = 2, #cols do align[i] = "---:" end
    return M.markdown{title = tbl.title, columns = cols, rows = shown, align = align}
  end
  tbl.csv_columns = {"run"}
  for _, m in ipairs(metrics) do
    tbl.csv_columns[#tbl.csv_columns + 1] = m
    tbl.csv_columns[#tbl.csv_columns + 1] = m .. "_delta"
  end
  return tbl
end

--- The entries of a run directory for a comparison: an evaluated run (metrics.json of `realnet eval`) is one
-- entry {label = dir, metrics}; a recipe run (metrics.json with rows) gives one per row, labelled dir:row.
-- Raises naming the directory when it has no readable metrics.json.
function M.load_run(dir)
  dir = dir:gsub("(.)/+$", "%1")
  local f = io.open(dir .. "/metrics.json", "rb")
  if not f then
    error(("%s has no metrics.json (a run directory evaluated by `realnet eval`, or a recipe run)"):format(dir), 0)
  end
  local text = f:read("a")
  f:close()
  local ok, m = pcall(json.decode, text)
  if not ok or type(m) ~= "table" then error(("%s/metrics.json is not valid JSON"):format(dir), 0) end
  if type(m.rows) ~= "table" then return {{label = dir, metrics = m}} end
  local key, out = m.key or "variant", {}
  for _, r in ipairs(m.rows) do out[#out + 1] = {label = dir .. ":" .. tostring(r[key]), metrics = r} end
  return out
end

return M
