--- realnet.nn.layers: modules with parameters - Conv2d, ConvTranspose2d, Linear, BatchNorm2d, GroupNorm.
--
-- Weights start as PyTorch's defaults: kaiming-uniform with a = sqrt(5) (bound 1/sqrt(fan_in)) and bias
-- U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from opts.generator, a generator made from opts.seed, or the
-- default generator.
local core = require "realnet.core"
local module = require "realnet.nn.module"

local M = {}
local Module = module.Module

-- ------------------------------------------------------------------ initialisation

--- The generator opts of a layer: {generator = g} or nil (the default generator).
function M.rng_opts(opts)
  if opts == nil then return nil end
  if opts.generator then return { generator = opts.generator } end
  if opts.seed then return { generator = core.generator(opts.seed, opts.stream or 0) } end
  return nil
end

--- kaiming_uniform_(t, fan_in, a, rng): U(-b, b) with b = sqrt(6 / ((1 + a^2) fan_in)).
function M.kaiming_uniform_(t, fan_in, a, rng)
  a = a or math.sqrt(5)
  local bound = math.sqrt(6 / ((1 + a * a) * fan_in))
  return t:uniform_(-bound, bound, rng)
end

local function bias_uniform_(t, fan_in, rng)
  local bound = fan_in > 0 and 1 / math.sqrt(fan_in) or 0
  return t:uniform_(-bound, bound, rng)
end

local function pair(v, what)
  if type(v) == "table" then
    if #v ~= 2 then error(what .. " must be an integer or {h, w}", 3) end
    return v
  end
  if math.type(v) ~= "integer" then error(what .. " must be an integer or {h, w}, got " .. tostring(v), 3) end
  return { v, v }
end

local function positive_int(v, what)
  if math.type(v) ~= "integer" or v < 1 then error(what .. " must be a positive integer, got " .. tostring(v), 3) end
  return v
end

-- ------------------------------------------------------------------ convolutions

local Conv2d = module.class("Conv2d", Module)
M.Conv2d = Conv2d

--- Conv2d(in, out, kernel, opts{stride, padding, dilation, groups, bias = true, seed | generator})
function Conv2d:__init(cin, cout, kernel, opts)
  opts = opts or {}
  positive_int(cin, "Conv2d: in_channels")
  positive_int(cout, "Conv2d: out_channels")
  local k = pair(kernel, "Conv2d: kernel")
  local groups = opts.groups or 1
  positive_int(groups, "Conv2d: groups")
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(("Conv2d: in_channels %d and out_channels %d must be divisible by groups %d"):format(cin, cout, groups), 2)
  end
  self.in_channels, self.out_channels, self.kernel = cin, cout, k
  self.conv = { stride = opts.stride or 1, padding = opts.padding or 0, dilation = opts.dilation or 1, groups = groups }
  local rng = M.rng_opts(opts)
  local fan_in = cin // groups * k[1] * k[2]
  self:register_parameter("weight", M.kaiming_uniform_(core.empty({ cout, cin // groups, k[1], k[2] }), fan_in, nil, rng))
  if opts.bias ~= false then self:register_parameter("bias", bias_uniform_(core.empty({ cout }), fan_in, rng)) end
end

function Conv2d:forward(x) return core.conv2d(x, self.weight, self.bias, self.conv) end

--- act(conv(x) + residual), with the convolution's epilogue fused when no gradient is recorded (core.conv2d's
-- opts.residual / opts.act; the same values as the separate ops). residual (the output's shape) and act ("relu",
-- "relu6", "silu", "sigmoid") may be nil.
function Conv2d:forward_fused(x, residual, act)
  local c = self.conv
  return core.conv2d(x, self.weight, self.bias, { stride = c.stride, padding = c.padding, dilation = c.dilation,
                                                  groups = c.groups, residual = residual, act = act })
end

function Conv2d:extra_repr()
  local c = self.conv
  local s = ("%d, %d, kernel {%d,%d}"):format(self.in_channels, self.out_channels, self.kernel[1], self.kernel[2])
  local function fmt(v) return type(v) == "table" and ("{" .. v[1] .. "," .. v[2] .. "}") or tostring(v) end
  if c.stride ~= 1 then s = s .. ", stride " .. fmt(c.stride) end
  if c.padding ~= 0 then s = s .. ", padding " .. fmt(c.padding) end
  if c.dilation ~= 1 then s = s .. ", dilation " .. fmt(c.dilation) end
  if c.groups ~= 1 then s = s .. ", groups " .. c.groups end
  if not self.bias then s = s .. ", bias false" end
  return s
end

local ConvTranspose2d = module.class("ConvTranspose2d", Module)
M.ConvTranspose2d = ConvTranspose2d

--- ConvTranspose2d(in, out, kernel, opts{stride, padding, output_padding, dilation, groups, bias, seed | generator})
-- Weight layout [in, out/groups, kh, kw] as in PyTorch.
function ConvTranspose2d:__init(cin, cout, kernel, opts)
  opts = opts or {}
  positive_int(cin, "ConvTranspose2d: in_channels")
  positive_int(cout, "ConvTranspose2d: out_channels")
  local k = pair(kernel, "ConvTranspose2d: kernel")
  local groups = opts.groups or 1
  positive_int(groups, "ConvTranspose2d: groups")
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(("ConvTranspose2d: in_channels %d and out_channels %d must be divisible by groups %d"):format(cin, cout,
      groups), 2)
  end
  self.in_channels, self.out_channels, self.kernel = cin, cout, k
  self.conv = { stride = opts.stride or 1, padding = opts.padding or 0, output_padding = opts.output_padding or 0,
                dilation = opts.dilation or 1, groups = groups }
  local rng = M.rng_opts(opts)
  local fan_in = cout // groups * k[1] * k[2] -- PyTorch computes it from weight dim 2
  self:register_parameter("weight", M.kaiming_uniform_(core.empty({ cin, cout // groups, k[1], k[2] }), fan_in, nil, rng))
  if opts.bias ~= false then self:register_parameter("bias", bias_uniform_(core.empty({ cout }), fan_in, rng)) end
end

function ConvTranspose2d:forward(x) return core.conv_transpose2d(x, self.weight, self.bias, self.conv) end

function ConvTranspose2d:extra_repr()
  return ("%d, %d, kernel {%d,%d}"):format(self.in_channels, self.out_channels, self.kernel[1], self.kernel[2])
end

-- ------------------------------------------------------------------ linear

local Linear = module.class("Linear", Module)
M.Linear = Linear

--- Linear(in, out, opts{bias = true, seed | generator}): y = x W^T + b
function Linear:__init(nin, nout, opts)
  opts = opts or {}
  positive_int(nin, "Linear: in_features")
  positive_int(nout, "Linear: out_features")
  self.in_features, self.out_features = nin, nout
  local rng = M.rng_opts(opts)
  self:register_parameter("weight", M.kaiming_uniform_(core.empty({ nout, nin }), nin, nil, rng))
  if opts.bias ~= false then self:register_parameter("bias", bias_uniform_(core.empty({ nout }), nin, rng)) end
end

function Linear:forward(x) return core.linear(x, self.weight, self.bias) end

function Linear:extra_repr()
  return ("%d, %d%s"):format(self.in_features, self.out_features, self.bias and "" or ", bias false")
end

-- ------------------------------------------------------------------ normalisation

local BatchNorm2d = module.class("BatchNorm2d", Module)
M.BatchNorm2d = BatchNorm2d

--- BatchNorm2d(C, opts{eps = 1e-5, momentum = 0.1, affine = true, track_running_stats = true})
-- running_mean / running_var are buffers (saved in state_dict, not trained).
function BatchNorm2d:__init(c, opts)
  opts = opts or {}
  positive_int(c, "BatchNorm2d: num_features")
  self.num_features = c
  self.eps = opts.eps or 1e-5
  self.momentum = opts.momentum or 0.1
  if opts.affine ~= false then
    self:register_parameter("weight", core.ones({ c }))
    self:register_parameter("bias", core.zeros({ c }))
  end
  if opts.track_running_stats ~= false then
    self:register_buffer("running_mean", core.zeros({ c }))
    self:register_buffer("running_var", core.ones({ c }))
  end
end

function BatchNorm2d:forward(x)
  local use_batch = self.training or not self.running_mean
  return core.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
    { training = use_batch, momentum = self.momentum, eps = self.eps })
end

function BatchNorm2d:extra_repr() return tostring(self.num_features) end

local GroupNorm = module.class("GroupNorm", Module)
M.GroupNorm = GroupNorm

--- GroupNorm(groups, C, opts{eps = 1e-5, affine = true})
function GroupNorm:__init(groups, c, opts)
  opts = opts or {}
  positive_int(groups, "GroupNorm: num_groups")
  positive_int(c, "GroupNorm: num_channels")
  if c % groups ~= 0 then error(("GroupNorm: %d channels are not divisible into %d groups"):format(c, groups), 2) end
  self.groups, self.num_channels, self.eps = groups, c, opts.eps or 1e-5
  if opts.affine ~= false then
    self:register_parameter("weight", core.ones({ c }))
    self:register_parameter("bias", core.zeros({ c }))
  end
end

function GroupNorm:forward(x) return core.group_norm(x, self.groups, self.weight, self.bias, { eps = self.eps }) end

--- silu(self(x)) in one kernel when no gradient is recorded (inference), else the two ops.
function GroupNorm:forward_silu(x)
  return core.group_norm_silu(x, self.groups, self.weight, self.bias, { eps = self.eps })
end

function GroupNorm:extra_repr() return ("%d, %d"):format(self.groups, self.num_channels) end

return M
