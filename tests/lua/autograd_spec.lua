-- Gradients from Lua: requires_grad, backward, grads of common ops against closed forms and finite
-- differences, no_grad scopes, zero_grad, detach.
local rn = require "realnet"
local H = require "rnhelp"

-- Central differences of scalar f() with respect to element i of x (flat, contiguous float32 x).
local function numeric_grad(f, x, i)
  local eps = 1e-3 -- small enough not to cross the kinks of relu and max pool
  local shape = x:shape()
  local idx, rem = {}, i - 1
  for d = #shape, 1, -1 do idx[d] = rem % shape[d] + 1; rem = rem // shape[d] end
  local v = x:get(table.unpack(idx))
  local function set(value)
    local args = { table.unpack(idx) }
    args[#args + 1] = value
    x:set(table.unpack(args))
  end
  local up, down
  rn.no_grad(function()
    set(v + eps); up = f():item()
    set(v - eps); down = f():item()
    set(v)
  end)
  return (up - down) / (2 * eps)
end

describe("autograd", function()
  it("differentiates sum(x * x) as 2x", function()
    local x = rn.randn({ 3, 4 }, { seed = 1 }):requires_grad(true)
    assert.is_true(x:requires_grad())
    local loss = (x * x):sum()
    assert.are.equal("string", type(loss:grad_fn()))
    loss:backward()
    assert.is_true(H.maxdiff(x:grad(), x * 2) < 1e-5)
  end)

  it("sends broadcast gradients back to the smaller shape", function()
    local a = rn.ones(2, 3):requires_grad(true)
    local b = rn.tensor({ 1, 2, 3 }):requires_grad(true)
    local loss = (a * b):sum()
    loss:backward()
    assert.are.same({ 2, 2, 2 }, b:grad():totable())
    assert.are.same({ { 1, 2, 3 }, { 1, 2, 3 } }, a:grad():totable())
  end)

  it("accumulates until zero_grad", function()
    local w = rn.ones(2):requires_grad(true)
    w:sum():backward()
    w:sum():backward()
    assert.are.same({ 2, 2 }, w:grad():totable())
    w:zero_grad()
    assert.is_nil(w:grad())
  end)

  it("matches finite differences through conv, batch norm, pooling and linear", function()
    local g = rn.generator(7)
    local x = g:randn({ 2, 2, 6, 6 })
    local w = (g:randn({ 3, 2, 3, 3 }) * 0.5):requires_grad(true)
    local lw = (g:randn({ 2, 27 }) * 0.3):requires_grad(true)
    local y = rn.tensor({ 1, 2 }, { dtype = "int64" })
    local function f()
      local h = rn.conv2d(x, w, nil, { padding = 1 })
      h = rn.batch_norm(h, nil, nil, nil, nil, { training = true })
      h = h:relu():max_pool2d(2):flatten(2)
      return rn.cross_entropy(rn.linear(h, lw), y)
    end
    f():backward()
    for _, p in ipairs { w, lw } do
      local ga = H.flat(p:grad())
      for _, i in ipairs { 1, 5, 17, 27 } do
        local num = numeric_grad(f, p, i)
        assert.is_true(math.abs(num - ga[i]) < 3e-3 + 3e-2 * math.abs(num),
          ("element %d: numeric %g analytic %g"):format(i, num, ga[i]))
      end
    end
  end)

  it("records nothing inside no_grad and restores the mode, also after an error", function()
    local x = rn.ones(2):requires_grad(true)
    local y = rn.no_grad(function() return x * 2 end)
    assert.is_false(y:requires_grad())
    assert.is_true(rn.grad_enabled())
    assert.is_not_nil(H.err(rn.no_grad, function() error("boom") end))
    assert.is_true(rn.grad_enabled())
    local a, b = rn.no_grad(function(p, q) return p + q, "extra" end, 1, 2)
    assert.are.equal(3, a)
    assert.are.equal("extra", b)
    local prev = rn.set_grad_enabled(false)
    assert.is_true(prev)
    assert.is_false((x * 2):requires_grad())
    rn.set_grad_enabled(true)
  end)

  it("detach cuts the graph; non-leaves refuse requires_grad", function()
    local x = rn.ones(2):requires_grad(true)
    local y = x * 3
    assert.is_false(y:detach():requires_grad())
    assert.is_false(y:is_leaf())
    assert.matches("leaf", H.err(y.requires_grad, y, true))
  end)

  it("refuses a second backward through a freed graph and a non-scalar root without a gradient", function()
    local x = rn.ones(2):requires_grad(true)
    local l = (x * x):sum()
    l:backward()
    assert.matches("already", H.err(l.backward, l))
    local v = x * 2
    assert.matches("one%-element", H.err(v.backward, v))
    v:backward(rn.ones(2))
    assert.is_not_nil(x:grad())
    assert.matches("require grad", H.err(function() rn.ones(1):backward() end))
  end)

  it("reaches parameters through views (narrow, transpose, reshape)", function()
    local x = rn.arange(6, { dtype = "float32" }):reshape(2, 3):requires_grad(false)
    local w = rn.ones(2, 3):requires_grad(true)
    local l = (w:transpose(1, 2):reshape(6) * x:transpose(1, 2):reshape(6)):sum()
    l:backward()
    assert.is_true(H.maxdiff(w:grad(), x) < 1e-6)
  end)
end)
