-- cuda_binding_spec.lua - rn.device and rn.cuda in every build: with no CUDA backend or no GPU they answer
-- "none" (false / 0) and CUDA devices fail with a clear error; with a GPU, tensors round-trip through it.
local rn = require "realnet"

describe("rn.cuda", function()
  it("reports a consistent device count", function()
    local n = rn.cuda.device_count()
    assert.is_true(math.type(n) == "integer" and n >= 0)
    assert.are.equal(n > 0, rn.cuda.available())
    assert.is_boolean(rn.cuda.built())
    if not rn.cuda.built() then assert.are.equal(0, n) end
    if n == 0 then assert.is_true(#rn.cuda.unavailable_reason() > 0) end
  end)

  it("switches TF32 on and off", function()
    local before = rn.cuda.tf32()
    rn.cuda.set_tf32(true)
    assert.is_true(rn.cuda.tf32())
    rn.cuda.set_tf32(false)
    assert.is_false(rn.cuda.tf32())
    rn.cuda.set_tf32(before)
    assert.has_error(function() rn.cuda.set_tf32("yes") end)
  end)

  it("keeps the cache queries usable without a device", function()
    rn.cuda.empty_cache()
    assert.is_true(rn.cuda.cached_bytes() >= 0)
  end)
end)

describe("rn.device", function()
  it("names the device of a tensor, as before", function()
    assert.are.equal("cpu", rn.device(rn.zeros({2})))
  end)

  it("checks device names", function()
    assert.are.equal("cpu", rn.device("cpu"))
    local ok, err = pcall(rn.device, "gpu")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("unknown device 'gpu'", 1, true))
  end)

  if rn.cuda.available() then
    it("round-trips a tensor through cuda:0", function()
      assert.are.equal("cuda:0", rn.device("cuda"))
      local x = rn.randn({3, 4}, {seed = 1})
      local g = x:to(rn.device("cuda:0"))
      assert.are.equal("cuda:0", g:device())
      local back = (g * 2):to("cpu")
      assert.are.same((x * 2):totable(), back:totable())
      rn.cuda.synchronize()
      assert.is_true(#rn.cuda.device_name(0) > 0)
    end)
    it("rejects a device index past the last one", function()
      local n = rn.cuda.device_count()
      local ok, err = pcall(rn.device, "cuda:" .. n)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("cuda:" .. n, 1, true))
    end)
  else
    it("refuses CUDA devices with the reason", function()
      local ok, err = pcall(rn.device, "cuda:0")
      assert.is_false(ok)
      assert.truthy(tostring(err):find("cuda:0", 1, true))
      local ok2, err2 = pcall(function() return rn.zeros({2}):to("cuda") end)
      assert.is_false(ok2)
      assert.truthy(tostring(err2):find("cuda", 1, true))
      assert.are.equal(0, rn.cuda.device_count())
      assert.has_error(function() rn.cuda.synchronize() end)
      assert.has_error(function() rn.cuda.device_name(0) end)
    end)
  end
end)
