-- Saving and loading named tensors: round trip, reports of missing / extra / mis-shaped names, atomic writes,
-- and clear errors for unreadable or corrupt files.
local rn = require "realnet"
local H = require "rnhelp"
local nn = rn.nn

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

local function net(seed, width)
  local g = rn.generator(seed)
  return nn.Sequential(nn.Conv2d(2, width or 4, 3, { padding = 1, generator = g }), nn.BatchNorm2d(width or 4),
    nn.ReLU(), nn.GlobalAvgPool(), nn.Flatten(), nn.Linear(width or 4, 3, { generator = g }))
end

describe("state save/load", function()
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)
  local x = rn.randn({ 2, 2, 5, 5 }, { seed = 3 })

  it("round-trips parameters and batch-norm buffers by name", function()
    local a = net(1)
    a(x) -- a training step moves the running statistics
    a:eval()
    local path = dir .. "/a.rns"
    rn.save(path, a)
    local b = net(2)
    b:eval()
    assert.is_true(H.maxdiff(a(x), b(x)) > 1e-3)
    local report = rn.state.load_into(path, b)
    assert.are.same({}, report.missing)
    assert.are.same({}, report.extra)
    assert.are.same({}, report.mismatched)
    assert.are.equal(0, H.maxdiff(a:get(2).running_mean, b:get(2).running_mean))
    assert.are.equal(0, H.maxdiff(a(x), b(x)))
    local sd, names = rn.load(path)
    assert.are.equal(8, #names)
    assert.are.equal("float32", sd["1.weight"]:dtype())
  end)

  it("keeps dtypes and shapes of plain tables of tensors", function()
    local path = dir .. "/t.rns"
    rn.save(path, { ids = rn.tensor({ 1, 2, 3 }, { dtype = "int64" }), img = rn.zeros({ 2, 3 }, { dtype = "uint8" }),
                    s = rn.tensor(2.5), v = rn.arange(6, { dtype = "float32" }):reshape(2, 3):transpose(1, 2) })
    local sd = rn.load(path)
    assert.are.equal("int64", sd.ids:dtype())
    assert.are.same({ 1, 2, 3 }, sd.ids:totable())
    assert.are.equal("uint8", sd.img:dtype())
    assert.are.equal(2.5, sd.s:item())
    assert.are.same({ { 0, 3 }, { 1, 4 }, { 2, 5 } }, sd.v:totable())
  end)

  it("reports missing, extra and mis-shaped names", function()
    local path = dir .. "/w.rns"
    local sd = net(1):state_dict()
    sd["6.bias"] = nil                       -- missing
    sd["head.weight"] = rn.zeros(3)          -- extra
    sd["1.weight"] = rn.zeros(4, 2, 5, 5)    -- mis-shaped
    rn.save(path, sd)
    local msg = H.err(rn.state.load_into, path, net(2))
    assert.matches("missing: 6.bias", msg)
    assert.matches("extra: head.weight", msg)
    assert.matches("mis%-shaped: 1.weight %(model %[4,2,3,3%], given %[4,2,5,5%]%)", msg)
    local b = net(2)
    local before = b["6"].bias:clone()
    local report = rn.state.load_into(path, b, { strict = false })
    assert.are.same({ "6.bias" }, report.missing)
    assert.are.same({ "head.weight" }, report.extra)
    assert.are.equal(1, #report.mismatched)
    assert.are.equal(0, H.maxdiff(b["6"].bias, before))            -- untouched
    assert.are.equal(0, H.maxdiff(b["6"].weight, sd["6.weight"]))  -- loaded
  end)

  it("writes atomically: no temporary file is left behind, an old file is replaced whole", function()
    local path = dir .. "/atomic.rns"
    rn.save(path, { a = rn.ones(3) })
    rn.save(path, { a = rn.zeros(5) })
    assert.are.same({ 0, 0, 0, 0, 0 }, rn.load(path).a:totable())
    for _, name in ipairs(rn.listdir(dir)) do assert.is_nil(name:match("%.tmp")) end
    assert.matches("cannot write", H.err(rn.save, dir .. "/no/such/dir/x.rns", { a = rn.ones(1) }))
  end)

  it("returns nil and a message for a missing file and raises for a corrupt one", function()
    local sd, msg = rn.load(dir .. "/absent.rns")
    assert.is_nil(sd)
    assert.matches("cannot open", msg)
    local bad = dir .. "/bad.rns"
    local f = io.open(bad, "wb"); f:write("not a state file"); f:close()
    assert.matches("not a realnet state file", H.err(rn.load, bad))
    rn.save(bad, { a = rn.ones(100) })
    f = io.open(bad, "rb"); local bytes = f:read("a"); f:close()
    f = io.open(bad, "wb"); f:write(bytes:sub(1, #bytes - 10)); f:close()
    assert.matches("truncated", H.err(rn.load, bad))
    assert.matches("load: .*cannot open", H.err(rn.state.load_into, dir .. "/absent.rns", net(1)))
  end)

  it("rejects things that are not tensors", function()
    assert.matches("not a tensor", H.err(rn.save, dir .. "/x.rns", { a = 1 }))
    assert.matches("path must be a string", H.err(rn.save, nil, { a = rn.ones(1) }))
  end)
end)
