--- realnet.nn.simple: modules without parameters - activations, pooling, resampling, Flatten, Identity.
local core = require "realnet.core"
local module = require "realnet.nn.module"

local M = {}
local Module = module.Module

--- A parameter-free module class whose forward calls core[op](x, ...) with the constructor's arguments.
local function wrap(name, op, describe)
  local cls = module.class(name, Module)
  function cls:__init(...) self.args = table.pack(...) end
  function cls:forward(x) return core[op](x, table.unpack(self.args, 1, self.args.n)) end
  function cls:extra_repr() return describe and describe(table.unpack(self.args, 1, self.args.n)) or "" end
  M[name] = cls
  return cls
end

local function opts_str(o)
  if type(o) ~= "table" then return o ~= nil and tostring(o) or "" end
  local keys, parts = {}, {}
  for k in pairs(o) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = o[k]
    if type(v) == "table" then v = "{" .. table.concat(v, ",") .. "}" end
    parts[#parts + 1] = k .. "=" .. tostring(v)
  end
  return table.concat(parts, ", ")
end

local function pool_str(k, o)
  local s = "kernel " .. (type(k) == "table" and ("{" .. table.concat(k, ",") .. "}") or tostring(k))
  if o then s = s .. ", " .. opts_str(o) end
  return s
end

wrap("ReLU", "relu")
wrap("ReLU6", "relu6")
wrap("SiLU", "silu")
wrap("Sigmoid", "sigmoid")
wrap("Tanh", "tanh")
wrap("GELU", "gelu")
wrap("LeakyReLU", "leaky_relu", function(s) return s and ("slope " .. s) or "" end)
wrap("Softmax", "softmax", function(d) return d and ("dim " .. d) or "" end)          -- Softmax(dim = -1)
wrap("LogSoftmax", "log_softmax", function(d) return d and ("dim " .. d) or "" end)
wrap("MaxPool2d", "max_pool2d", pool_str)                                               -- MaxPool2d(kernel, opts)
wrap("AvgPool2d", "avg_pool2d", pool_str)
wrap("AdaptiveAvgPool2d", "adaptive_avg_pool2d", function(s) return opts_str(s) end)    -- AdaptiveAvgPool2d(size)
wrap("GlobalAvgPool", "global_avg_pool")
wrap("GlobalMaxPool", "global_max_pool")
wrap("Upsample", "upsample", opts_str)                          -- Upsample{size | scale_factor, mode, align_corners}

--- Flatten(start = 2, end = -1): merges dims start..end (1-based; dim 1 is the batch).
local Flatten = module.class("Flatten", Module)
M.Flatten = Flatten
function Flatten:__init(s, e) self.start_dim, self.end_dim = s or 2, e or -1 end
function Flatten:forward(x) return x:flatten(self.start_dim, self.end_dim) end
function Flatten:extra_repr() return self.start_dim .. ", " .. self.end_dim end

local Identity = module.class("Identity", Module)
M.Identity = Identity
function Identity:forward(x) return x end

return M
