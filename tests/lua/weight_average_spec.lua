-- realnet.weight_average: the bias-corrected running average of a model's weights that `realnet train` saves
-- (trainer.average), against the weighted sum it stands for; swapping it in and out; restoring it.
local rn = require "realnet"
local H = require "rnhelp"
local nn = rn.nn
local weight_average = require "realnet.weight_average"

-- A linear layer and a batch norm whose weights, bias and running mean are all set to v.
-- m.lin and m.bn are the layers (m[1] and m[2] of the Sequential).
local function net()
  local lin, bn = nn.Linear(3, 2, {seed = 1}), nn.BatchNorm2d(2)
  local m = nn.Sequential(lin, bn)
  m.lin, m.bn = lin, bn
  return m
end
local function set(m, v)
  m.lin.weight:fill_(v); m.lin.bias:fill_(v); m.bn.running_mean:fill_(v)
end

describe("weight_average", function()
  it("is sum_k d^(n-k) w_k / sum_k d^(n-k) over the updates, running statistics included", function()
    local m, d = net(), 0.9
    local wa = weight_average.new(m, d)
    local values = {1, 5, -2, 3}
    for _, v in ipairs(values) do set(m, v); wa:update() end
    local num, den, n = 0, 0, #values
    for k, v in ipairs(values) do num = num + d ^ (n - k) * v; den = den + d ^ (n - k) end
    local want = num / den
    wa:with_average(function()
      assert.is_true(math.abs(m.lin.weight:totable()[1][1] - want) < 1e-5)
      assert.is_true(math.abs(m.bn.running_mean:totable()[1] - want) < 1e-5)
    end)
    -- outside with_average the model holds its own (latest) weights; apply keeps the average
    assert.are.equal(3, m.lin.bias:totable()[1])
    wa:apply()
    assert.is_true(math.abs(m.lin.bias:totable()[1] - want) < 1e-5)
  end)

  it("counts the first update fully, so decay 0 is the latest weights", function()
    local m = net()
    local wa = weight_average.new(m, 0)
    set(m, 7); wa:update(); set(m, 2); wa:update(); set(m, -1)
    wa:apply()
    assert.are.equal(2, m.lin.weight:totable()[1][1])
  end)

  it("restores from a saved average and the model's own weights, and continues as if never stopped", function()
    local a, b = net(), net()
    local wa, wb = weight_average.new(a, 0.8), weight_average.new(b, 0.8)
    set(a, 1); wa:update(); set(a, 4); wa:update()
    -- what a checkpoint keeps: the average in the model file, the own weights beside it
    local avg_state
    wa:with_average(function()
      avg_state = {}
      for name, t in pairs(a:state_dict()) do avg_state[name] = t:clone() end
    end)
    local own = {}
    for name, t in pairs(wa:own()) do own[name] = t:clone() end
    b:load_state_dict(avg_state)
    wb:restore(own, wa.n)
    assert.are.equal(4, b.lin.weight:totable()[1][1])
    set(a, -3); wa:update(); set(b, -3); wb:update()
    wa:apply(); wb:apply()
    assert.are.equal(0, H.maxdiff(a.lin.weight, b.lin.weight))
    assert.are.equal(0, H.maxdiff(a.bn.running_mean, b.bn.running_mean))
  end)

  it("refuses a decay outside [0, 1) and a checkpoint without the model's weights", function()
    assert.matches("decay must be a number in %[0, 1%)", H.err(weight_average.new, net(), 1))
    assert.matches("decay must be a number in %[0, 1%)", H.err(weight_average.new, net(), 0 / 0))
    local wa = weight_average.new(net(), 0.5)
    assert.matches("the checkpoint has no weights for 1.weight", H.err(wa.restore, wa, {}, 1))
  end)
end)
