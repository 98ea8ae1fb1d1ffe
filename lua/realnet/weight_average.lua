--- realnet.weight_average: a running average of a model's weights over epochs, the model `realnet train` saves
-- when trainer.average > 0.
--
--   local wa = weight_average.new(model, 0.9)   -- decay per epoch
--   wa:update()                                  -- at the end of each epoch
--   wa:with_average(function() save(model) end)  -- the model holds the average inside fn, its own weights after
--   wa:apply()                                   -- the model keeps the average (end of training)
--
-- An exponential moving average with bias correction: after n updates it is sum_k d^(n-k) w_k / sum_k d^(n-k),
-- so the first epoch's weights count fully and a short run is not pulled towards its initialisation. Averaged:
-- the parameters and the running statistics (batch norm, RRS), which belong to the weights they were measured
-- with; index and projection buffers stay as they are. Why (README, magnetic_tile): at a constant learning
-- rate the last epoch's image AUROC swings by +-0.01 from epoch to epoch; the average of the last epochs does not.
local optim = require "realnet.optim"

local M = {}

local WA = {}
WA.__index = WA
WA.__name = "WeightAverage"

local function averaged(name) return name:match("running_mean$") or name:match("running_var$") end

--- new(model, decay): decay in [0, 1) per update (0: the average is the latest weights).
function M.new(model, decay)
  if type(decay) ~= "number" or not (decay >= 0 and decay < 1) then
    error("weight average: the decay must be a number in [0, 1), got " .. tostring(decay), 2)
  end
  local self = setmetatable({decay = decay, n = 0, names = {}, live = {}}, WA)
  for name, p in model:named_parameters() do self.names[#self.names + 1] = name; self.live[#self.live + 1] = p end
  for name, b in model:named_buffers() do
    if averaged(name) then self.names[#self.names + 1] = name; self.live[#self.live + 1] = b end
  end
  self.ema = optim.ema(self.live, {decay = decay}) -- its shadow copies hold the average
  return self
end

--- Folds the model's current weights into the average.
function WA:update()
  self.n = self.n + 1
  -- the latest epoch's weight is (1 - d) / (1 - d^n): all of it at n = 1
  self.ema:update(1 - (1 - self.decay) / (1 - self.decay ^ self.n))
end

local function copy_into(dst, src) for i, t in ipairs(dst) do t:copy_(src[i]) end end

--- Runs fn with the average in the model, then puts the model's own weights back.
function WA:with_average(fn)
  if self.n == 0 then return fn() end
  local own = {}
  for i, t in ipairs(self.live) do own[i] = t:detach():clone() end
  self.ema:copy_to(self.live)
  local ok, err = pcall(fn)
  copy_into(self.live, own)
  if not ok then error(err, 0) end
end

--- The model keeps the average from now on.
function WA:apply() if self.n > 0 then self.ema:copy_to(self.live) end end

--- name -> the model's own (not averaged) tensor, for a checkpoint from which training continues.
function WA:own()
  local sd = {}
  for i, n in ipairs(self.names) do sd[n] = self.live[i] end
  return sd
end

--- Restores from a checkpoint: the model holds the average (as saved), own (name -> tensor) its own weights.
function WA:restore(own, n)
  for i, name in ipairs(self.names) do
    if not own[name] then error(("the checkpoint has no weights for %s"):format(name), 0) end
  end
  self.n = n
  copy_into(self.ema.shadow, self.live)
  for i, name in ipairs(self.names) do self.live[i]:copy_(own[name]) end
end

return M
