-- List the realnet commands, each with the first comment line of its script.
local rn = require "realnet"

local lines = {
  "usage: realnet [command] [args]",
  "",
  "  (no command)          interactive REPL with realnet loaded as rn",
  "  run FILE.lua [args]   run a Lua script (arg table as in lua), or a recipe: run recipes/X.lua --help",
  "  -e CODE [args]        run a chunk of Lua",
  "  -i FILE.lua [args]    run a script, then the REPL",
  "  --version             print the version",
  "",
  "commands (scripts in " .. rn.home .. "/scripts):",
}

-- The first "--" comment line of a script, without the dashes.
local function describe(path)
  local f = io.open(path, "r")
  if not f then return "" end
  for line in f:lines() do
    local text = line:match("^%-%-+%s*(.-)%s*$")
    if text and text ~= "" then f:close(); return text end
    if not line:match("^#!") and not line:match("^%s*$") and not line:match("^%-%-") then break end
  end
  f:close()
  return ""
end

local names = rn.listdir(rn.home .. "/scripts") or {}
for _, file in ipairs(names) do
  local name = file:match("^([%w_%-]+)%.lua$")
  if name then lines[#lines + 1] = ("  %-20s  %s"):format(name, describe(rn.home .. "/scripts/" .. file)) end
end
print(table.concat(lines, "\n"))
