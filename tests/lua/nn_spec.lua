-- The nn library: Module bookkeeping, layer shapes and initialisation, optimisers, and the acceptance test:
-- a conv-bn-relu-pool-linear net trained with Adam on a generated two-class image task reaches >= 95%.
local rn = require "realnet"
local H = require "rnhelp"
local nn = rn.nn

local function small_net(g)
  return nn.Sequential(
    nn.Conv2d(1, 8, 3, { padding = 1, generator = g }),
    nn.BatchNorm2d(8),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(8 * 6 * 6, 2, { generator = g }))
end

describe("Module", function()
  it("names parameters and buffers by dotted path, in order", function()
    local net = small_net(rn.generator(1))
    local names = {}
    for n, p in net:named_parameters() do names[#names + 1] = n; assert.is_true(p:requires_grad()) end
    assert.are.same({ "1.weight", "1.bias", "2.weight", "2.bias", "6.weight", "6.bias" }, names)
    assert.are.equal(6, #net:parameters())
    assert.are.equal(8 * 9 + 8 + 8 + 8 + 2 * 288 + 2, net:num_parameters())
    local buffers = {}
    for n in net:named_buffers() do buffers[#buffers + 1] = n end
    assert.are.same({ "2.running_mean", "2.running_var" }, buffers)
    local sd, order = net:state_dict()
    assert.are.equal(8, #order)
    assert.is_not_nil(sd["2.running_var"])
    assert.are.equal(6, #net)
    assert.are.equal(net["1"], net:get(1))
    local kids = {}
    for n, m in net:named_children() do kids[#kids + 1] = n .. "=" .. getmetatable(m).__name end
    assert.are.equal("1=Conv2d", kids[1])
    assert.matches("Conv2d%(1, 8", tostring(net))
  end)

  it("train() and eval() reach every child", function()
    local net = small_net(rn.generator(1))
    net:eval()
    assert.is_false(net.training)
    assert.is_false(net:get(2).training)
    net:train()
    assert.is_true(net:get(2).training)
  end)

  it("initialises like PyTorch from an explicit seed", function()
    local a = nn.Conv2d(4, 6, 3, { seed = 3 })
    local b = nn.Conv2d(4, 6, 3, { seed = 3 })
    local c = nn.Conv2d(4, 6, 3, { seed = 4 })
    assert.are.equal(0, H.maxdiff(a.weight, b.weight))
    assert.is_true(H.maxdiff(a.weight, c.weight) > 0)
    local bound = 1 / math.sqrt(4 * 9) -- kaiming uniform a = sqrt(5) gives 1/sqrt(fan_in)
    assert.is_true(a.weight:abs():max():item() <= bound + 1e-7)
    assert.is_true(a.weight:abs():max():item() > 0.8 * bound)
    assert.is_true(a.bias:abs():max():item() <= bound + 1e-7)
    local l = nn.Linear(100, 3, { seed = 1 })
    assert.is_true(l.weight:abs():max():item() <= 0.1 + 1e-7)
    local ct = nn.ConvTranspose2d(4, 6, 2, { seed = 1 })
    assert.are.same({ 4, 6, 2, 2 }, ct.weight:shape())
    assert.is_true(ct.weight:abs():max():item() <= 1 / math.sqrt(6 * 4) + 1e-7)
  end)

  it("rejects bad layer settings with clear messages", function()
    assert.matches("divisible by groups", H.err(nn.Conv2d, 3, 8, 3, { groups = 2 }))
    assert.matches("positive integer", H.err(nn.Conv2d, 0, 8, 3))
    assert.matches("positive integer", H.err(nn.Linear, 2.5, 3))
    assert.matches("not divisible", H.err(nn.GroupNorm, 3, 8))
  end)
end)

describe("layers", function()
  local x = rn.randn({ 2, 4, 8, 8 }, { seed = 2 })

  it("GroupNorm:forward_silu is silu(GroupNorm(x)), fused without grad and differentiable with it", function()
    local gn = nn.GroupNorm(2, 4)
    gn.weight:copy_(rn.randn({ 4 }, { seed = 3 }))
    gn.bias:copy_(rn.randn({ 4 }, { seed = 4 }))
    local ref = rn.silu(gn(x))
    local fused = rn.no_grad(function() return gn:forward_silu(x) end)
    assert.are.equal(0, (fused - ref):abs():max():item())
    local y = gn:forward_silu(x) -- weights require grad: the two ops, so the gradient reaches them
    y:sum():backward()
    assert.is_true(gn.weight:grad() ~= nil and gn.weight:grad():abs():max():item() > 0)
  end)

  it("Conv2d:forward_fused is act(conv(x) + residual): one kernel call without grad, the same values, a gradient with it",
    function()
    local conv = nn.Conv2d(4, 6, 3, { stride = 2, padding = 1, seed = 5 })
    local r = rn.randn({ 2, 6, 4, 4 }, { seed = 6 })
    for _, act in ipairs{ "relu", "relu6", "silu", "sigmoid" } do
      local ref = rn[act](conv(x) + r)
      local calls = rn.kernel_calls()
      local fused = rn.no_grad(function() return conv:forward_fused(x, r, act) end)
      assert.are.equal(1, rn.kernel_calls() - calls)
      assert.are.equal(0, (fused - ref):abs():max():item(), act)
    end
    local plain = rn.no_grad(function() return conv:forward_fused(x, r) end)
    assert.are.equal(0, (plain - (r + conv(x))):abs():max():item())
    local y = conv:forward_fused(x, r, "silu") -- the weights require grad: recorded as the separate ops
    y:sum():backward()
    assert.is_true(conv.weight:grad():abs():max():item() > 0)
    assert.matches("opts.act must be none, relu, relu6, silu or sigmoid, got 'tanh'",
      H.err(rn.conv2d, x, conv.weight, conv.bias, { padding = 1, act = "tanh" }), 1, true)
    assert.matches("opts.residual must be a tensor", H.err(rn.conv2d, x, conv.weight, nil, { residual = 3 }), 1, true)
    assert.matches("residual [2,6,8,8] must have the output's shape [2,6,4,4]",
      H.err(conv.forward_fused, conv, x, rn.zeros({ 2, 6, 8, 8 })), 1, true)
  end)

  it("produce the expected shapes", function()
    local cases = {
      { nn.Conv2d(4, 6, 3, { stride = 2, padding = 1, seed = 1 }), { 2, 6, 4, 4 } },
      { nn.Conv2d(4, 4, 3, { padding = 2, dilation = 2, groups = 4, seed = 1 }), { 2, 4, 8, 8 } },
      { nn.ConvTranspose2d(4, 3, 2, { stride = 2, seed = 1 }), { 2, 3, 16, 16 } },
      { nn.BatchNorm2d(4), { 2, 4, 8, 8 } },
      { nn.GroupNorm(2, 4), { 2, 4, 8, 8 } },
      { nn.ReLU6(), { 2, 4, 8, 8 } },
      { nn.SiLU(), { 2, 4, 8, 8 } },
      { nn.Sigmoid(), { 2, 4, 8, 8 } },
      { nn.Tanh(), { 2, 4, 8, 8 } },
      { nn.Softmax(2), { 2, 4, 8, 8 } },
      { nn.MaxPool2d(3, { stride = 2, ceil_mode = true }), { 2, 4, 4, 4 } },
      { nn.AvgPool2d(2), { 2, 4, 4, 4 } },
      { nn.AdaptiveAvgPool2d(3), { 2, 4, 3, 3 } },
      { nn.GlobalAvgPool(), { 2, 4, 1, 1 } },
      { nn.GlobalMaxPool(), { 2, 4, 1, 1 } },
      { nn.Upsample { scale_factor = 2, mode = "bilinear", align_corners = true }, { 2, 4, 16, 16 } },
      { nn.Upsample { size = { 5, 7 } }, { 2, 4, 5, 7 } },
      { nn.Flatten(), { 2, 256 } },
      { nn.Sequential(nn.GlobalAvgPool(), nn.Flatten(), nn.Linear(4, 3, { seed = 1 })), { 2, 3 } },
    }
    for _, c in ipairs(cases) do
      assert.are.same(c[2], c[1](x):shape(), tostring(c[1]))
    end
    assert.is_true(H.maxdiff(nn.Softmax(2)(x):sum(2), rn.ones(2, 8, 8)) < 1e-5)
  end)

  it("batch norm updates running statistics in training mode only", function()
    local bn = nn.BatchNorm2d(4, { momentum = 0.5 })
    local y = bn(x + 3)
    assert.is_true(math.abs(y:mean():item()) < 1e-5)
    local rm = bn.running_mean:clone()
    assert.is_true(rm:min():item() > 1.0) -- moved halfway towards the batch mean of about 3
    bn:eval()
    bn(x + 10)
    assert.are.equal(0, H.maxdiff(rm, bn.running_mean))
  end)
end)

describe("optimisers", function()
  it("sgd takes p - lr * grad", function()
    local p = rn.tensor({ 1, 2 }):requires_grad(true)
    local opt = rn.optim.sgd({ p }, { lr = 0.5 })
    local loss = (p * p):sum()
    loss:backward()
    opt:step()
    assert.is_true(H.maxdiff(p, { 0, 0 }) < 1e-6)
    assert.are.equal(1, opt:steps())
    assert.are.equal(0.5, opt:lr())
    opt:lr(0.1)
    assert.is_true(math.abs(opt:lr() - 0.1) < 1e-7)
    opt:zero_grad()
    assert.is_nil(p:grad())
  end)

  it("adam moves each parameter by about lr on its first step", function()
    local p = rn.tensor({ 1, -1 }):requires_grad(true)
    local opt = rn.optim.adam({ p }, { lr = 0.1 })
    local loss = (p * 3):sum()
    loss:backward()
    opt:step()
    assert.is_true(H.maxdiff(p, { 0.9, -1.1 }) < 1e-5)
    assert.is_not_nil(opt:state(1, 1))
    assert.matches("optimizer", tostring(opt))
  end)

  it("clips gradients by their joint norm", function()
    local a = rn.zeros(2):requires_grad(true)
    local b = rn.zeros(1):requires_grad(true)
    local loss = (a * rn.tensor({ 3, 0 })):sum() + (b * 4):sum()
    loss:backward()
    local norm = rn.optim.clip_grad_norm({ a, b }, 1)
    assert.is_true(math.abs(norm - 5) < 1e-5)
    assert.is_true(H.maxdiff(a:grad(), { 0.6, 0 }) < 1e-5)
  end)

  it("keeps an EMA of parameters", function()
    local lin = nn.Linear(2, 1, { seed = 1 })
    local ema = rn.optim.ema(lin, { decay = 0.5 })
    local w0 = lin.weight:clone()
    lin.weight:fill_(1)
    ema:update()
    assert.is_true(H.maxdiff(ema:state_dict()["weight"], (w0 + 1) * 0.5) < 1e-6)
    local other = nn.Linear(2, 1, { seed = 9 })
    ema:copy_to(other)
    assert.is_true(H.maxdiff(other.weight, (w0 + 1) * 0.5) < 1e-6)
  end)
end)

describe("acceptance", function()
  it("a conv-bn-relu-pool-linear net trained with Adam reaches >= 95% training accuracy", function()
    local x, y = rn.toy.two_class_images(128, { size = 12, seed = 11 })
    local net = small_net(rn.generator(5))
    local opt = rn.optim.adam(net, { lr = 0.01 })
    for _ = 1, 60 do
      local loss = rn.cross_entropy(net(x), y)
      opt:zero_grad()
      loss:backward()
      opt:step()
    end
    local acc = rn.no_grad(function()
      return net(x):argmax(2):eq(y):float():mean():item()
    end)
    assert.is_true(acc >= 0.95, "training accuracy " .. acc)
    net:eval()
    local eval_acc = rn.no_grad(function() return net(x):argmax(2):eq(y):float():mean():item() end)
    assert.is_true(eval_acc >= 0.95, "eval-mode accuracy " .. eval_acc)
  end)
end)
