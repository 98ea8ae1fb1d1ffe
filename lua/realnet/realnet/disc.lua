--- realnet.realnet.disc: RealNet's discriminator ("decoder" in the authors' code, spec 7) over the selected
-- residual channels S [B,K,h,w] at the finest feature resolution:
--   decoder1: ResidualStack(K, n layers: x + Conv1x1(ReLU(Conv3x3(ReLU(x)))), no biases), ReLU,
--             Conv3x3(K -> hidden), BatchNorm2d(hidden), ReLU
--   decoder2: Conv3x3(hidden -> mid1), ReLU, Conv3x3(mid1 -> mid2), ReLU
--   bilinear x2 (align_corners), decoder3: Conv3x3(mid2 -> 4), ReLU, Conv3x3(4 -> 2)
--   bilinear to the image size (align_corners) -> 2-class logits [B,2,H,W]
local core = require "realnet.core"
local nn = require "realnet.nn"

local M = {}

local ResidualLayer = nn.class("ResidualLayer", nn.Module)
M.ResidualLayer = ResidualLayer

function ResidualLayer:__init(ch, g)
  self.ch = ch
  self:add_module("conv3", nn.Conv2d(ch, ch, 3, {padding = 1, bias = false, generator = g}))
  self:add_module("conv1", nn.Conv2d(ch, ch, 1, {bias = false, generator = g}))
end

-- the ReLU and the residual add run in the convolutions' epilogues (Conv2d:forward_fused)
function ResidualLayer:forward(x)
  return self.conv1:forward_fused(self.conv3:forward_fused(core.relu(x), nil, "relu"), x)
end
function ResidualLayer:extra_repr() return tostring(self.ch) end

local Disc = nn.class("Discriminator", nn.Module)
M.Discriminator = Disc

--- Discriminator(in_channels, opts{hidden, mid = {c1, c2}, residual_layers, bn_momentum, generator})
function Disc:__init(cin, opts)
  local g = opts.generator
  self.cin = cin
  local stack = self:add_module("stack", nn.Sequential())
  for _ = 1, opts.residual_layers do stack:add(ResidualLayer(cin, g)) end
  self:add_module("conv_a", nn.Conv2d(cin, opts.hidden, 3, {padding = 1, generator = g}))
  self:add_module("bn", nn.BatchNorm2d(opts.hidden, {momentum = opts.bn_momentum}))
  self:add_module("conv_b", nn.Conv2d(opts.hidden, opts.mid[1], 3, {padding = 1, generator = g}))
  self:add_module("conv_c", nn.Conv2d(opts.mid[1], opts.mid[2], 3, {padding = 1, generator = g}))
  self:add_module("conv_d", nn.Conv2d(opts.mid[2], 4, 3, {padding = 1, generator = g}))
  self:add_module("conv_e", nn.Conv2d(4, 2, 3, {padding = 1, generator = g}))
end

--- S [B,K,h,w] -> logits [B,2,out_h,out_w]
function Disc:forward(s, out_h, out_w)
  local x = core.relu(self.stack(s))
  x = core.relu(self.bn(self.conv_a(x)))
  x = self.conv_c:forward_fused(self.conv_b:forward_fused(x, nil, "relu"), nil, "relu")
  local sh = x:shape()
  x = core.upsample(x, {size = {2 * sh[3], 2 * sh[4]}, mode = "bilinear", align_corners = true})
  x = self.conv_e(self.conv_d:forward_fused(x, nil, "relu"))
  return core.upsample(x, {size = {out_h, out_w}, mode = "bilinear", align_corners = true})
end

function Disc:extra_repr() return ("%d channels in"):format(self.cin) end

return M
