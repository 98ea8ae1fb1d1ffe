--- realnet.nn.module: the Module base class, the class helper and Sequential.
--
-- A module keeps its parameters, buffers (e.g. batch-norm running statistics) and children by name, in
-- registration order, so parameters() is stable and state_dict() names are dotted paths ("1.weight").
local core = require "realnet.core"

local M = {}

--- class(name, parent): a class table; calling it builds an instance and runs its :__init(...).
-- Instances are called like functions: m(x) is m:forward(x).
function M.class(name, parent)
  local cls = {}
  cls.__index = cls
  cls.__name = name
  cls.__call = function(self, ...) return self:forward(...) end
  cls.__tostring = function(self) return self:repr("") end
  setmetatable(cls, {
    __index = parent,
    __call = function(c, ...)
      local o = setmetatable({ _params = {}, _buffers = {}, _children = {}, training = true }, c)
      o:__init(...)
      return o
    end,
  })
  return cls
end

local Module = M.class("Module")
M.Module = Module

function Module:__init() end

function Module:forward()
  error(getmetatable(self).__name .. ": forward is not defined", 2)
end

local function add_name(list, name)
  for _, n in ipairs(list) do if n == name then return end end
  list[#list + 1] = name
end

--- Registers a parameter (a float tensor that will require grad) under `name`; also reachable as self[name].
function Module:register_parameter(name, t)
  if t ~= nil then
    if not core.is_tensor(t) then error("register_parameter: '" .. name .. "' is not a tensor", 2) end
    if not t:requires_grad() then t:requires_grad(true) end
  end
  add_name(self._params, name)
  self[name] = t
  return t
end

--- Registers a buffer: state saved with the module that is not trained (running statistics).
function Module:register_buffer(name, t)
  add_name(self._buffers, name)
  self[name] = t
  return t
end

--- Adds a child module under `name`.
function Module:add_module(name, m)
  name = tostring(name)
  add_name(self._children, name)
  self[name] = m
  return m
end

local function walk(self, prefix, kind, out)
  for _, n in ipairs(self[kind]) do
    local t = self[n]
    if t ~= nil then out[#out + 1] = { prefix .. n, t } end
  end
  for _, c in ipairs(self._children) do walk(self[c], prefix .. c .. ".", kind, out) end
  return out
end

local function iter(list)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e[1], e[2] end
  end
end

--- Iterator over (dotted name, parameter) in registration order.
function Module:named_parameters() return iter(walk(self, "", "_params", {})) end
--- Iterator over (dotted name, buffer).
function Module:named_buffers() return iter(walk(self, "", "_buffers", {})) end

--- The parameters as a list (what optimisers take).
function Module:parameters()
  local out = {}
  for _, e in ipairs(walk(self, "", "_params", {})) do out[#out + 1] = e[2] end
  return out
end

--- Iterator over (name, child) of the direct children.
function Module:named_children()
  local list = {}
  for _, n in ipairs(self._children) do list[#list + 1] = { n, self[n] } end
  return iter(list)
end

function Module:children()
  local out = {}
  for _, n in ipairs(self._children) do out[#out + 1] = self[n] end
  return out
end

function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

function Module:train(mode)
  if mode == nil then mode = true end
  self.training = mode
  for _, c in ipairs(self._children) do self[c]:train(mode) end
  return self
end

function Module:eval() return self:train(false) end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p:zero_grad() end
  return self
end

--- Moves parameters and buffers to a device or dtype (call before creating an optimiser).
function Module:to(where)
  local function moved(t)
    if t == nil or where == t:device() or where == t:dtype() then return t end
    return t:detach():to(where)
  end
  for _, n in ipairs(self._params) do
    local t = moved(self[n])
    if t ~= self[n] then self[n] = t:requires_grad(true) end
  end
  for _, n in ipairs(self._buffers) do self[n] = moved(self[n]) end
  for _, c in ipairs(self._children) do self[c]:to(where) end
  return self
end

--- name -> tensor for every parameter and buffer, and the names in order.
function Module:state_dict()
  local sd, names = {}, {}
  for _, kind in ipairs { "_params", "_buffers" } do
    for _, e in ipairs(walk(self, "", kind, {})) do
      sd[e[1]] = e[2]
      names[#names + 1] = e[1]
    end
  end
  table.sort(names)
  return sd, names
end

local function shape_str(t) return "[" .. table.concat(t:shape(), ",") .. "]" end

--- Copies tensors by name into the module. Returns {missing = {...}, extra = {...}, mismatched = {...}}; with
-- opts.strict (the default) any problem raises an error that lists all of them.
function Module:load_state_dict(sd, opts)
  local strict = not (opts and opts.strict == false)
  local own, names = self:state_dict()
  local report = { missing = {}, extra = {}, mismatched = {} }
  for _, n in ipairs(names) do
    local src = sd[n]
    if src == nil then
      report.missing[#report.missing + 1] = n
    elseif shape_str(src) ~= shape_str(own[n]) then
      report.mismatched[#report.mismatched + 1] =
        n .. " (model " .. shape_str(own[n]) .. ", given " .. shape_str(src) .. ")"
    end
  end
  local extra = {}
  for n in pairs(sd) do if own[n] == nil then extra[#extra + 1] = n end end
  table.sort(extra)
  report.extra = extra
  local bad = #report.missing + #report.extra + #report.mismatched > 0
  if strict and bad then
    local lines = { "load_state_dict: the state does not fit the model" }
    if #report.missing > 0 then lines[#lines + 1] = "  missing: " .. table.concat(report.missing, ", ") end
    if #report.extra > 0 then lines[#lines + 1] = "  extra: " .. table.concat(report.extra, ", ") end
    if #report.mismatched > 0 then lines[#lines + 1] = "  mis-shaped: " .. table.concat(report.mismatched, ", ") end
    error(table.concat(lines, "\n"), 2)
  end
  for _, n in ipairs(names) do
    local src = sd[n]
    if src ~= nil and shape_str(src) == shape_str(own[n]) then own[n]:copy_(src) end
  end
  return report
end

--- One line describing this module's own settings (subclasses override).
function Module:extra_repr() return "" end

function Module:repr(indent)
  local head = getmetatable(self).__name .. "(" .. self:extra_repr()
  if #self._children == 0 then return head .. ")" end
  local lines = { head }
  for _, n in ipairs(self._children) do
    lines[#lines + 1] = indent .. "  (" .. n .. "): " .. self[n]:repr(indent .. "  ")
  end
  lines[#lines + 1] = indent .. ")"
  return table.concat(lines, "\n")
end

-- ------------------------------------------------------------------ Sequential

local Sequential = M.class("Sequential", Module)
M.Sequential = Sequential

--- Sequential(m1, m2, ...) or Sequential{m1, m2, ...}: children named "1", "2", ...
function Sequential:__init(...)
  local mods = { ... }
  if #mods == 1 and getmetatable(mods[1]) == nil and type(mods[1]) == "table" then mods = mods[1] end
  for _, m in ipairs(mods) do self:add(m) end
end

function Sequential:add(m)
  self:add_module(tostring(#self._children + 1), m)
  return self
end

function Sequential:get(i) return self[tostring(i)] end

Sequential.__len = function(self) return #self._children end

function Sequential:forward(x)
  for _, n in ipairs(self._children) do x = self[n]:forward(x) end
  return x
end

return M
