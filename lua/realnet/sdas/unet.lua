--- realnet.sdas.unet: the guided-diffusion U-Net (ADM) of SDAS (spec 11.1).
--
--   local net = unet.new{in_channels = 3, model_channels = 32, num_res_blocks = 1, channel_mult = {1, 2},
--                        attention_resolutions = {2}, num_head_channels = 16, num_classes = 2, seed = 1}
--   local out = net(x, tau, y)   -- x [B,3,H,W] in [-1,1], tau [B] timesteps, y [B] 1-based class ids
--                                -- -> [B, 6, H, W] (eps, v) with learn_sigma
--
-- Parameter names and shapes follow guided-diffusion's state_dict (time_embed.0.weight, input_blocks.1.0.
-- in_layers.2.weight, ..., attention qkv as [3C, C, 1] Conv1d weights), so pretrained checkpoints can be
-- loaded by name. attention_resolutions are downsampling factors ds (RealNet's reading, spec 11.1).
local core = require "realnet.core"
local nn = require "realnet.nn"
local layers = require "realnet.nn.layers"

local M = {}
local Module = nn.Module

--- GroupNorm group count: the largest g <= max_groups dividing ch (32 at the paper's widths).
local function groups(ch, max_groups)
  for g = math.min(max_groups, ch), 1, -1 do
    if ch % g == 0 then return g end
  end
  return 1
end

local function zero_(m)
  m.weight:zero_()
  if m.bias then m.bias:zero_() end
  return m
end

local function has(list, v)
  for _, e in ipairs(list) do if e == v then return true end end
  return false
end

--- A container whose children have explicit names ("0", "2", ...), matching torch's nn.Sequential indices.
local Slots = nn.class("Slots", Module)
function Slots:__init(named)
  local keys = {}
  for k in pairs(named) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do self:add_module(tostring(k), named[k]) end
end

--- Conv1d with kernel 1 (guided-diffusion's attention projections): weight [out, in, 1].
local Conv1x1 = nn.class("Conv1d", Module)
function Conv1x1:__init(cin, cout, opts)
  self.cin, self.cout = cin, cout
  local rng = layers.rng_opts(opts)
  self:register_parameter("weight", layers.kaiming_uniform_(core.empty({ cout, cin, 1 }), cin, nil, rng))
  local b = 1 / math.sqrt(cin)
  self:register_parameter("bias", core.empty({ cout }):uniform_(-b, b, rng))
end
function Conv1x1:forward(x)  -- x [B, C, H, W]: a 1x1 convolution over the spatial map
  return core.conv2d(x, self.weight:reshape({ self.cout, self.cin, 1, 1 }), self.bias)
end
function Conv1x1:forward_fused(x, residual) -- conv(x) + residual, the add fused (core.conv2d's opts.residual)
  return core.conv2d(x, self.weight:reshape({ self.cout, self.cin, 1, 1 }), self.bias, { residual = residual })
end
function Conv1x1:extra_repr() return ("%d, %d, kernel 1"):format(self.cin, self.cout) end

--- Sinusoidal timestep embedding [B, dim]: [cos(t f), sin(t f)] with f_i = exp(-ln(max_period) i / half).
function M.timestep_embedding(t, dim, max_period)
  max_period = max_period or 10000
  local half = dim // 2
  local f = {}
  for i = 0, half - 1 do f[#f + 1] = math.exp(-math.log(max_period) * i / half) end
  local B = t:shape()[1]
  local args = t:reshape({ B, 1 }) * core.tensor(f):reshape({ 1, half }):to(t:device())
  local emb = core.cat({ core.cos(args), core.sin(args) }, 2)
  if dim % 2 == 1 then emb = core.cat({ emb, core.zeros({ B, 1 }, { device = t:device() }) }, 2) end
  return emb
end

-- ------------------------------------------------------------------ res block

local ResBlock = nn.class("DiffusionResBlock", Module)
M.ResBlock = ResBlock

--- ResBlock(cin, cout, emb_dim, o{scale_shift, dropout, resample = nil | "up" | "down", norm_groups, generator})
function ResBlock:__init(cin, cout, emb, o)
  local g = { generator = o.generator }
  self.cin, self.cout, self.resample, self.scale_shift, self.dropout = cin, cout, o.resample, o.scale_shift, o.dropout
  self.generator = o.generator
  self:add_module("in_layers", Slots { [0] = nn.GroupNorm(groups(cin, o.norm_groups), cin),
    [2] = nn.Conv2d(cin, cout, 3, { padding = 1, generator = o.generator }) })
  self:add_module("emb_layers", Slots { [1] = nn.Linear(emb, o.scale_shift and 2 * cout or cout, g) })
  self:add_module("out_layers", Slots { [0] = nn.GroupNorm(groups(cout, o.norm_groups), cout),
    [3] = zero_(nn.Conv2d(cout, cout, 3, { padding = 1, generator = o.generator })) })
  if cin ~= cout then self:add_module("skip_connection", nn.Conv2d(cin, cout, 1, g)) end
end

local function resample(x, how)
  if how == "down" then return core.avg_pool2d(x, 2) end
  if how == "up" then return core.upsample(x, { scale_factor = 2, mode = "nearest" }) end
  return x
end

function ResBlock:forward(x, emb)
  local il, ol = self.in_layers, self.out_layers
  local h = il["0"]:forward_silu(x)
  if self.resample then
    h = resample(h, self.resample)
    x = resample(x, self.resample)
  end
  h = il["2"](h)
  local e = self.emb_layers["1"](core.silu(emb))
  local B, C = e:shape()[1], self.cout
  if self.scale_shift then
    local scale = e:narrow(2, 1, C):reshape({ B, C, 1, 1 })
    local shift = e:narrow(2, C + 1, C):reshape({ B, C, 1, 1 })
    h = core.silu(ol["0"](h) * (scale + 1) + shift)
  else
    h = ol["0"]:forward_silu(h + e:reshape({ B, C, 1, 1 }))
  end
  if self.dropout > 0 and self.training then
    local ro = self.generator and { generator = self.generator } or nil
    local keep = core.ge(core.rand(h:shape(), ro):to(h:device()), self.dropout)
    h = h * keep * (1 / (1 - self.dropout))
  end
  if self.skip_connection then x = self.skip_connection(x) end
  return ol["3"]:forward_fused(h, x) -- x + conv(h), the add in the convolution's epilogue
end

function ResBlock:extra_repr()
  return ("%d -> %d%s"):format(self.cin, self.cout, self.resample and (", " .. self.resample) or "")
end

-- ------------------------------------------------------------------ attention

local Attention = nn.class("DiffusionAttention", Module)
M.Attention = Attention

--- Attention(ch, o{head_channels, heads, norm_groups, generator}): x + proj_out(Attn(qkv(norm(x)))) with
-- guided-diffusion's legacy QKV layout (per head: q, k, v rows of the qkv projection are adjacent).
function Attention:__init(ch, o)
  local heads = o.heads or 1
  if o.head_channels and o.head_channels > 0 then heads = ch // o.head_channels end
  if heads < 1 or ch % heads ~= 0 then heads = 1 end
  self.ch, self.heads = ch, heads
  local g = { generator = o.generator }
  self:add_module("norm", nn.GroupNorm(groups(ch, o.norm_groups), ch))
  self:add_module("qkv", Conv1x1(ch, 3 * ch, g))
  self:add_module("proj_out", zero_(Conv1x1(ch, ch, g)))
end

function Attention:forward(x)
  return self.proj_out:forward_fused(core.qkv_attention(self.qkv(self.norm(x)), self.heads), x)
end

function Attention:extra_repr() return ("%d, heads %d"):format(self.ch, self.heads) end

-- ------------------------------------------------------------------ plain resamplers (resblock_updown = false)

local Down = nn.class("Downsample", Module)
function Down:__init(ch, o)
  if o.conv_resample then self:add_module("op", nn.Conv2d(ch, ch, 3, { stride = 2, padding = 1, generator = o.generator })) end
end
function Down:forward(x) return self.op and self.op(x) or core.avg_pool2d(x, 2) end

local Up = nn.class("Upsample", Module)
function Up:__init(ch, o)
  if o.conv_resample then self:add_module("conv", nn.Conv2d(ch, ch, 3, { padding = 1, generator = o.generator })) end
end
function Up:forward(x)
  x = core.upsample(x, { scale_factor = 2, mode = "nearest" })
  return self.conv and self.conv(x) or x
end

--- A block list (guided-diffusion's TimestepEmbedSequential): res blocks get the embedding, others not.
local Block = nn.class("TimestepBlock", Module)
function Block:__init(mods) for i, m in ipairs(mods) do self:add_module(tostring(i - 1), m) end end
function Block:forward(x, emb)
  for _, n in ipairs(self._children) do
    local m = self[n]
    if getmetatable(m) == ResBlock then x = m(x, emb) else x = m(x) end
  end
  return x
end

-- ------------------------------------------------------------------ U-Net

local UNet = nn.class("DiffusionUNet", Module)
M.UNet = UNet

local function check_int(v, what, min)
  if math.type(v) ~= "integer" or v < min then
    error(("sdas.unet: %s must be an integer >= %d, got %s"):format(what, min, tostring(v)), 4)
  end
  return v
end

--- UNet(opts): in_channels = 3, model_channels = 256, out_channels (default in_channels, doubled when
-- learn_sigma), num_res_blocks = 2, channel_mult = {1, 1, 2, 2, 4, 4}, attention_resolutions = {32, 16, 8},
-- num_head_channels = 64 (or num_heads when -1), use_scale_shift_norm = true, resblock_updown = true,
-- conv_resample = true, dropout = 0, num_classes = nil, learn_sigma = true, norm_groups = 32, seed | generator.
function UNet:__init(opts)
  opts = opts or {}
  local cin = check_int(opts.in_channels or 3, "in_channels", 1)
  local mc = check_int(opts.model_channels or 256, "model_channels", 1)
  local nres = check_int(opts.num_res_blocks or 2, "num_res_blocks", 1)
  local mult = opts.channel_mult or { 1, 1, 2, 2, 4, 4 }
  for i, m in ipairs(mult) do check_int(m, "channel_mult[" .. i .. "]", 1) end
  if #mult == 0 then error("sdas.unet: channel_mult is empty", 3) end
  local attn = opts.attention_resolutions or { 32, 16, 8 }
  local learn_sigma = opts.learn_sigma ~= false
  local cout = opts.out_channels or (learn_sigma and 2 * cin or cin)
  local dropout = opts.dropout or 0
  if type(dropout) ~= "number" or dropout < 0 or dropout >= 1 then
    error("sdas.unet: dropout must be in [0, 1), got " .. tostring(dropout), 3)
  end
  local gen = opts.generator or (opts.seed and core.generator(opts.seed, opts.stream or 0)) or nil
  local ng = opts.norm_groups or 32
  local ted = 4 * mc
  local ro = {
    scale_shift = opts.use_scale_shift_norm ~= false, dropout = dropout, norm_groups = ng, generator = gen }
  local function rb(a, b, how)
    return ResBlock(a, b, ted, { scale_shift = ro.scale_shift, dropout = dropout, norm_groups = ng,
      generator = gen, resample = how })
  end
  local ao = { head_channels = opts.num_head_channels or 64, heads = opts.num_heads or 1, norm_groups = ng,
               generator = gen }
  if ao.head_channels == -1 then ao.head_channels = nil end
  local updown = opts.resblock_updown ~= false
  local co = { conv_resample = opts.conv_resample ~= false, generator = gen }
  self.in_channels, self.out_channels, self.model_channels = cin, cout, mc
  self.levels, self.learn_sigma, self.num_classes = #mult, learn_sigma, opts.num_classes

  self:add_module("time_embed", Slots { [0] = nn.Linear(mc, ted, { generator = gen }),
    [2] = nn.Linear(ted, ted, { generator = gen }) })
  if opts.num_classes then
    check_int(opts.num_classes, "num_classes", 1)
    local e = self:add_module("label_emb", Module())
    e:register_parameter("weight", core.randn({ opts.num_classes, ted }, gen and { generator = gen } or nil))
  end
  local inb = self:add_module("input_blocks", Slots {})
  local function push(list, mods) list:add_module(tostring(#list._children), Block(mods)) end
  push(inb, { nn.Conv2d(cin, mc, 3, { padding = 1, generator = gen }) })
  local skips, ch, ds = { mc }, mc, 1
  for level, m in ipairs(mult) do
    for _ = 1, nres do
      local mods = { rb(ch, m * mc) }
      ch = m * mc
      if has(attn, ds) then mods[#mods + 1] = Attention(ch, ao) end
      push(inb, mods)
      skips[#skips + 1] = ch
    end
    if level < #mult then
      push(inb, { updown and rb(ch, ch, "down") or Down(ch, co) })
      skips[#skips + 1] = ch
      ds = ds * 2
    end
  end
  self:add_module("middle_block", Block { rb(ch, ch), Attention(ch, ao), rb(ch, ch) })
  local outb = self:add_module("output_blocks", Slots {})
  for level = #mult, 1, -1 do
    local m = mult[level]
    for i = 0, nres do
      local skip = table.remove(skips)
      local mods = { rb(ch + skip, m * mc) }
      ch = m * mc
      if has(attn, ds) then mods[#mods + 1] = Attention(ch, ao) end
      if level > 1 and i == nres then
        mods[#mods + 1] = updown and rb(ch, ch, "up") or Up(ch, co)
        ds = ds // 2
      end
      push(outb, mods)
    end
  end
  self:add_module("out", Slots { [0] = nn.GroupNorm(groups(ch, ng), ch),
    [2] = zero_(nn.Conv2d(ch, cout, 3, { padding = 1, generator = gen })) })
end

--- The spatial divisor the input needs (2 per downsampling).
function UNet:divisor() return 1 << (self.levels - 1) end

--- forward(x [B, C, H, W], t [B] timesteps (a tensor or one number), y [B] 1-based class ids when
-- num_classes) -> [B, out_channels, H, W]
function UNet:forward(x, t, y)
  local s = x:shape()
  if #s ~= 4 or s[2] ~= self.in_channels then
    error(("sdas.unet: input must be [B, %d, H, W], got [%s]"):format(self.in_channels, table.concat(s, ",")), 2)
  end
  local d = self:divisor()
  if s[3] % d ~= 0 or s[4] % d ~= 0 then
    error(("sdas.unet: image %dx%d is not divisible by %d (%d levels of channel_mult)"):format(s[3], s[4], d,
      self.levels), 2)
  end
  if type(t) == "number" then t = core.full({ s[1] }, t) end
  if not core.is_tensor(t) or t:numel() ~= s[1] then
    error("sdas.unet: t must be a number or a tensor of " .. s[1] .. " timesteps", 2)
  end
  t = t:reshape({ s[1] })
  if t:dtype() ~= "float32" then t = t:float() end
  t = t:to(x:device())
  local te = self.time_embed
  local emb = te["2"](core.silu(te["0"](M.timestep_embedding(t, self.model_channels))))
  if self.num_classes then
    if y == nil then error("sdas.unet: this network is class-conditional: pass y (1-based class ids)", 2) end
    if type(y) == "number" then y = core.full({ s[1] }, y, { dtype = "int64" }) end
    emb = emb + core.index_select(self.label_emb.weight, 1, y)
  elseif y ~= nil then
    error("sdas.unet: y was given but the network has no num_classes", 2)
  end
  local hs = {}
  local h = x
  for _, n in ipairs(self.input_blocks._children) do
    h = self.input_blocks[n](h, emb)
    hs[#hs + 1] = h
  end
  h = self.middle_block(h, emb)
  for _, n in ipairs(self.output_blocks._children) do
    h = self.output_blocks[n](core.cat({ h, table.remove(hs) }, 2), emb)
  end
  return self.out["2"](self.out["0"]:forward_silu(h))
end

function UNet:extra_repr()
  return ("%d -> %d channels, width %d, %d levels%s"):format(self.in_channels, self.out_channels,
    self.model_channels, self.levels, self.num_classes and (", " .. self.num_classes .. " classes") or "")
end

--- new(opts): a UNet (rn.sdas.unet{...}).
function M.new(opts) return UNet(opts) end

return M
