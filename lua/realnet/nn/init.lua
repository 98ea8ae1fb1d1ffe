--- realnet.nn: neural-network modules.
--
--   local nn = require("realnet").nn
--   local net = nn.Sequential(
--     nn.Conv2d(1, 8, 3, {padding = 1, seed = 1}), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
--     nn.Flatten(), nn.Linear(8 * 6 * 6, 2, {seed = 2}))
--   local logits = net(x)                       -- net:forward(x)
--   for name, p in net:named_parameters() do print(name, p) end
local module = require "realnet.nn.module"
local layers = require "realnet.nn.layers"
local simple = require "realnet.nn.simple"

local M = {
  class = module.class,
  Module = module.Module,
  Sequential = module.Sequential,
  init = { kaiming_uniform_ = layers.kaiming_uniform_ },
}
for _, part in ipairs { layers, simple } do
  for k, v in pairs(part) do
    if k:match("^%u") then M[k] = v end
  end
end

return M
