--- realnet.realnet.unet: RealNet's feature-reconstruction U-Net (spec 6): guided-diffusion topology without
-- time embedding, single-branch res blocks, attention at chosen downsampling factors, zero-initialised output
-- conv and attention projections (so a fresh network outputs exactly 0).
--
--   local net = unet.UNet(256, {ratio = 0.5, num_res_blocks = 2, channel_mult = {1, 2, 4}, attention = {2, 4},
--                               head_channels = 64, norm_groups = 32, generator = g})
--   local y = net(x)     -- x [B,256,h,w] -> y [B,256,h,w]; h, w divisible by 2^(#channel_mult - 1)
local core = require "realnet.core"
local nn = require "realnet.nn"

local M = {}
local Module = nn.Module

--- GroupNorm group count: the largest g <= max_groups dividing ch (32 at the paper's widths; narrower
-- networks of the cpu preset get fewer groups instead of an error).
function M.groups(ch, max_groups)
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

-- ------------------------------------------------------------------ res block

local ResBlock = nn.class("ReconResBlock", Module)
M.ResBlock = ResBlock

--- ResBlock(cin, cout, opts{resample = nil | "down" | "up", norm_groups, generator}):
-- out = skip(x') + Conv3x3(resample_h(SiLU(GN(x)))), x' = resample_x(x); down = AvgPool 2x2 on both paths,
-- up = a separate ConvTranspose2d(k4, s2, p1) on each path; skip = identity or a 1x1 conv.
function ResBlock:__init(cin, cout, opts)
  local g = {generator = opts.generator}
  self.cin, self.cout, self.resample = cin, cout, opts.resample
  self:add_module("norm", nn.GroupNorm(M.groups(cin, opts.norm_groups), cin))
  if opts.resample == "up" then
    self:add_module("up_h", nn.ConvTranspose2d(cin, cin, 4, {stride = 2, padding = 1, generator = opts.generator}))
    self:add_module("up_x", nn.ConvTranspose2d(cin, cin, 4, {stride = 2, padding = 1, generator = opts.generator}))
  end
  self:add_module("conv", nn.Conv2d(cin, cout, 3, {padding = 1, generator = opts.generator}))
  if cin ~= cout then self:add_module("skip", nn.Conv2d(cin, cout, 1, g)) end
end

function ResBlock:forward(x)
  local h = self.norm:forward_silu(x)
  if self.resample == "down" then
    h = core.avg_pool2d(h, 2)
    x = core.avg_pool2d(x, 2)
  elseif self.resample == "up" then
    h = self.up_h(h)
    x = self.up_x(x)
  end
  if self.skip then x = self.skip(x) end
  return self.conv:forward_fused(h, x) -- x + conv(h), the add in the convolution's epilogue
end

function ResBlock:extra_repr()
  return ("%d -> %d%s"):format(self.cin, self.cout, self.resample and (", " .. self.resample) or "")
end

-- ------------------------------------------------------------------ attention

-- The attention block is the diffusion U-Net's (spec 6: RealNet shares it, legacy per-head QKV layout), so weights
-- load by the same names and layout in both networks.
local Attention = require("realnet.sdas.unet").Attention
M.Attention = Attention

-- ------------------------------------------------------------------ U-Net

local UNet = nn.class("ReconUNet", Module)
M.UNet = UNet

local function has(list, v)
  for _, e in ipairs(list) do if e == v then return true end end
  return false
end

--- UNet(channels, opts{ratio, num_res_blocks, channel_mult, attention, head_channels, norm_groups,
-- middle_attention = true, generator}); model channels mc = max(1, floor(ratio * channels)).
function UNet:__init(channels, opts)
  local mc = math.max(1, math.floor(opts.ratio * channels))
  local mult, nres, attn = opts.channel_mult, opts.num_res_blocks, opts.attention
  local bo = {norm_groups = opts.norm_groups, generator = opts.generator}
  local ao = {head_channels = opts.head_channels, norm_groups = opts.norm_groups, generator = opts.generator}
  self.channels, self.mc, self.levels = channels, mc, #mult
  self:add_module("in_conv", nn.Conv2d(channels, mc, 3, {padding = 1, generator = opts.generator}))
  local skips, ch, ds = {mc}, mc, 1
  local down = self:add_module("down", nn.Sequential())
  for level, m in ipairs(mult) do
    for _ = 1, nres do
      local blk = nn.Sequential(ResBlock(ch, m * mc, bo))
      ch = m * mc
      if has(attn, ds) then blk:add(Attention(ch, ao)) end
      down:add(blk)
      skips[#skips + 1] = ch
    end
    if level < #mult then
      down:add(nn.Sequential(ResBlock(ch, ch, {resample = "down", norm_groups = bo.norm_groups,
                                                generator = bo.generator})))
      skips[#skips + 1] = ch
      ds = ds * 2
    end
  end
  local mid = self:add_module("mid", nn.Sequential(ResBlock(ch, ch, bo)))
  if opts.middle_attention ~= false then mid:add(Attention(ch, ao)) end
  mid:add(ResBlock(ch, ch, bo))
  local up = self:add_module("up", nn.Sequential())
  for level = #mult, 1, -1 do
    local m = mult[level]
    for i = 0, nres do
      local skip = table.remove(skips)
      local blk = nn.Sequential(ResBlock(ch + skip, m * mc, bo))
      ch = m * mc
      if has(attn, ds) then blk:add(Attention(ch, ao)) end
      if level > 1 and i == nres then
        blk:add(ResBlock(ch, ch, {resample = "up", norm_groups = bo.norm_groups, generator = bo.generator}))
        ds = ds // 2
      end
      up:add(blk)
    end
  end
  self:add_module("out_norm", nn.GroupNorm(M.groups(ch, opts.norm_groups), ch))
  self:add_module("out_conv", zero_(nn.Conv2d(ch, channels, 3, {padding = 1, generator = opts.generator})))
end

--- The spatial divisor the input needs (2 per downsampling).
function UNet:divisor() return 1 << (self.levels - 1) end

function UNet:forward(x)
  local d = self:divisor()
  local s = x:shape()
  if s[2] ~= self.channels then
    error(("recon U-Net: input has %d channels, the network was built for %d"):format(s[2], self.channels), 2)
  end
  if s[3] % d ~= 0 or s[4] % d ~= 0 then
    error(("recon U-Net: feature map %dx%d is not divisible by %d (%d levels of channel_mult)"):format(s[3], s[4],
      d, self.levels), 2)
  end
  local h = self.in_conv(x)
  local hs = {h}
  for _, blk in ipairs(self.down:children()) do
    h = blk(h)
    hs[#hs + 1] = h
  end
  h = self.mid(h)
  for _, blk in ipairs(self.up:children()) do
    h = blk(core.cat({h, table.remove(hs)}, 2))
  end
  return self.out_conv(self.out_norm:forward_silu(h))
end

function UNet:extra_repr() return ("%d channels, mc %d, %d levels"):format(self.channels, self.mc, self.levels) end

return M
