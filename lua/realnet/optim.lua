--- realnet.optim: optimisers (userdata over the C optimisers), gradient clipping and parameter EMA.
--
--   local opt = rn.optim.adam(net, {lr = 1e-3})   -- a module or a list of parameters
--   loss:backward(); opt:step(); opt:zero_grad()
--   local ema = rn.optim.ema(net, {decay = 0.999}); ema:update(); ema:copy_to(eval_net)
local core = require "realnet.core"

local M = {}

-- A module (anything with :parameters()) or a list of tensors -> list of tensors.
local function param_list(p, who)
  if type(p) == "table" and type(p.parameters) == "function" then return p:parameters() end
  if type(p) ~= "table" then error(who .. ": expected a module or a list of parameters, got " .. type(p), 3) end
  return p
end

--- adam(params, opts{lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0})
function M.adam(params, opts) return core.optimizer("adam", param_list(params, "adam"), opts) end
--- adamw(params, opts{lr = 1e-3, betas, eps, weight_decay = 1e-2}): decoupled weight decay
function M.adamw(params, opts) return core.optimizer("adamw", param_list(params, "adamw"), opts) end
--- sgd(params, opts{lr, momentum = 0, nesterov = false, weight_decay = 0})
function M.sgd(params, opts) return core.optimizer("sgd", param_list(params, "sgd"), opts) end

--- clip_grad_norm(params, max_norm) -> the total gradient norm before clipping
function M.clip_grad_norm(params, max_norm)
  return core.clip_grad_norm(param_list(params, "clip_grad_norm"), max_norm)
end

-- ------------------------------------------------------------------ EMA of parameters

local EMA = {}
EMA.__index = EMA
EMA.__name = "EMA"

--- ema(module or params, opts{decay = 0.999}): shadow copies updated by :update().
function M.ema(model, opts)
  local decay = opts and opts.decay or 0.999
  if type(decay) ~= "number" or decay ~= decay or decay < 0 or decay > 1 then
    error("ema: opts.decay must be a number in [0, 1], got " .. tostring(decay), 2)
  end
  local self = setmetatable({ decay = decay, params = {}, shadow = {}, names = {} }, EMA)
  if type(model) == "table" and type(model.named_parameters) == "function" then
    for name, p in model:named_parameters() do
      self.names[#self.names + 1] = name
      self.params[#self.params + 1] = p
    end
  else
    self.params = param_list(model, "ema")
    for i = 1, #self.params do self.names[i] = tostring(i) end
  end
  for i, p in ipairs(self.params) do self.shadow[i] = p:detach():clone() end
  return self
end

--- shadow <- decay * shadow + (1 - decay) * param (decay: this update's, default the EMA's own)
function EMA:update(decay) core.ema_update(self.shadow, self.params, decay or self.decay) end

--- Copies the averaged values into a module or a list of tensors with the same layout.
function EMA:copy_to(target)
  local dst = param_list(target, "ema:copy_to")
  if #dst ~= #self.shadow then
    error(("ema:copy_to: %d averaged tensors but %d targets"):format(#self.shadow, #dst), 2)
  end
  for i, t in ipairs(dst) do t:copy_(self.shadow[i]) end
end

--- name -> averaged tensor (names from the module, or "1", "2", ... for a list)
function EMA:state_dict()
  local sd = {}
  for i, n in ipairs(self.names) do sd[n] = self.shadow[i] end
  return sd
end

return M
