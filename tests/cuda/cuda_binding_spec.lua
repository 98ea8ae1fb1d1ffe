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

  it("switches the bfloat16 autocast on and off, from REALNET_BF16 at start", function()
    local before = rn.cuda.bf16()
    assert.are.equal(os.getenv("REALNET_BF16") == "1", before)
    rn.cuda.set_bf16(true)
    assert.is_true(rn.cuda.bf16())
    rn.cuda.set_bf16(false)
    assert.is_false(rn.cuda.bf16())
    rn.cuda.set_bf16(before)
    assert.has_error(function() rn.cuda.set_bf16(1) end)
    local fallbacks = rn.cuda.bf16_fallbacks() -- no bfloat16 convolution has run in this process
    assert.are.equal(0, fallbacks)
    assert.are.equal("integer", math.type(fallbacks))
  end)

  it("keeps the cache queries usable without a device", function()
    rn.cuda.empty_cache()
    assert.is_true(rn.cuda.cached_bytes() >= 0)
  end)

  it("sets the lanes of parallel sections (1 = none) and checks the value", function()
    local before = rn.cuda.lanes()
    assert.is_true(before >= 1 and before <= 8)
    rn.cuda.set_lanes(4)
    assert.are.equal(4, rn.cuda.lanes())
    rn.cuda.set_lanes(before)
    assert.has_error(function() rn.cuda.set_lanes(0) end,
      "bad argument #1 to 'set_lanes' (lanes must be 1 .. 8 (1: no parallel lanes))")
    assert.has_error(function() rn.cuda.set_lanes(9) end)
    assert.has_error(function() rn.cuda.fork(0, 1) end, "bad argument #2 to 'fork' (a fork has 2 .. 8 lanes)")
    if not rn.cuda.available() then
      local ok, err = pcall(rn.cuda.fork, 0, 2)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("cuda:0", 1, true))
      assert.has_error(function() rn.cuda.join(0) end)
    end
  end)
end)

describe("realnet.device.parallel", function()
  local device = require "realnet.device"

  it("runs the parts one after another on the CPU, whatever the lanes", function()
    local before = rn.cuda.lanes()
    rn.cuda.set_lanes(4)
    local order = {}
    local out = device.parallel("cpu", 5, function(i)
      order[#order + 1] = i
      return rn.full({2}, i) * 2
    end)
    rn.cuda.set_lanes(before)
    assert.are.same({1, 2, 3, 4, 5}, order)
    assert.are.equal(5, #out)
    for i = 1, 5 do assert.are.same({2 * i, 2 * i}, out[i]:totable()) end
  end)

  it("raises a part's error", function()
    local ok, err = pcall(device.parallel, "cpu", 3, function(i)
      if i == 2 then error("part 2 failed", 0) end
      return i
    end)
    assert.is_false(ok)
    assert.are.equal("part 2 failed", err)
  end)

  -- the fork / lane / join sequence with the rn.cuda calls recorded instead of made (runs without a GPU)
  local function recorded(lanes, fn)
    local saved, log = {}, {}
    for _, k in ipairs{"fork", "lane", "join", "lanes"} do saved[k] = rn.cuda[k] end
    rn.cuda.lanes = function() return lanes end
    rn.cuda.fork = function(dev, n) log[#log + 1] = ("fork %s %d"):format(dev, n) end
    rn.cuda.lane = function(dev, i) log[#log + 1] = ("lane %d"):format(i) end
    rn.cuda.join = function(dev) log[#log + 1] = "join " .. dev end
    local ok, err = pcall(fn, log)
    for k, f in pairs(saved) do rn.cuda[k] = f end
    return ok, err, log
  end

  it("sends part i to lane (i - 1) % k + 1 of one fork and joins after the last part", function()
    local ok, out, log = recorded(3, function(log)
      return device.parallel("cuda:0", 5, function(i) log[#log + 1] = "part " .. i; return i * 10 end)
    end)
    assert.is_true(ok, tostring(out))
    assert.are.same({10, 20, 30, 40, 50}, out)
    assert.are.same({"fork cuda:0 3", "lane 1", "part 1", "lane 2", "part 2", "lane 3", "part 3", "lane 1", "part 4",
                     "lane 2", "part 5", "join cuda:0"}, log)
    local _, _, log2 = recorded(8, function() return device.parallel("cuda:0", 2, function(i) return i end) end)
    assert.are.equal("fork cuda:0 2", log2[1]) -- no more lanes than parts
    local _, _, log3 = recorded(1, function() return device.parallel("cuda:0", 4, function(i) return i end) end)
    assert.are.same({}, log3) -- lanes off: no fork
  end)

  it("joins when a part fails, and raises the part's error", function()
    local ok, err, log = recorded(2, function()
      return device.parallel("cuda:1", 3, function(i) if i == 2 then error("part 2 failed", 0) end return i end)
    end)
    assert.is_false(ok)
    assert.are.equal("part 2 failed", err)
    assert.are.same({"fork cuda:1 2", "lane 1", "lane 2", "join cuda:1"}, log)
  end)

  if rn.cuda.available() then
    it("joins the lanes when a part fails on the GPU, and the next fork works", function()
      local before = rn.cuda.lanes()
      finally(function() rn.cuda.set_lanes(before) end)
      rn.cuda.set_lanes(3)
      local x = rn.randn({64, 64}, {seed = 3}):to("cuda:0")
      local ok, err = pcall(device.parallel, "cuda:0", 3, function(i)
        if i == 2 then error("part 2 failed", 0) end
        return x * i
      end)
      assert.is_false(ok)
      assert.are.equal("part 2 failed", err)
      local out = device.parallel("cuda:0", 3, function(i) return (x * i):sum() end)
      local s = x:sum():item()
      for i = 1, 3 do assert.is_true(math.abs(out[i]:item() - i * s) <= 1e-4 * math.max(1, math.abs(i * s))) end
      assert.has_error(function() rn.cuda.join(0) end) -- nothing left open
    end)
  end
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
