-- rn.h5 and rn.tensorset: HDF5 round trips (dtypes, shapes, attributes, compression, appends), atomic writes
-- (commit, discard, __close on error), load sets naming missing/extra/mis-shaped tensors, the state files of
-- rn.save in HDF5 (and the interim RNSTATE1 format), and safetensors / .npy folders, honest or lying.
local rn = require "realnet"
local H = require "rnhelp"

local dir = H.tmpdir()
local spit = H.spit

local function no_temporaries()
  for _, name in ipairs(rn.listdir(dir)) do assert.is_nil(name:match("%.tmp"), name) end
end

-- A safetensors image from {{name, dtype, shape, bytes}, ...}; header_fn may rewrite the JSON header.
local function safetensors(entries, header_fn)
  local parts, data, off = {}, {}, 0
  for _, e in ipairs(entries) do
    parts[#parts + 1] = ('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}'):format(e[1], e[2],
      table.concat(e[3], ","), off, off + #e[4])
    data[#data + 1] = e[4]
    off = off + #e[4]
  end
  local header = '{"__metadata__":{"format":"pt"},' .. table.concat(parts, ",") .. "}"
  if header_fn then header = header_fn(header) end
  return string.pack("<I8", #header) .. header .. table.concat(data)
end

-- An .npy v1.0 file of float32 values (row-major).
local function npy(shape, values)
  local dims = table.concat(shape, ", ") .. (#shape == 1 and "," or "")
  local dict = ("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }"):format(dims)
  dict = dict .. (" "):rep(63 - (10 + #dict) % 64) .. "\n"
  local data = string.pack("<" .. ("f"):rep(#values), table.unpack(values))
  return "\147NUMPY\1\0" .. string.pack("<I2", #dict) .. dict .. data
end

describe("rn.h5", function()

  it("round-trips tensors of every dtype with shapes, groups and attributes", function()
    local path = dir .. "/a.h5"
    local w = rn.randn({ 4, 3, 2 }, { seed = 1 })
    local f <close> = rn.h5.open(path, "w")
    f:write("/model/conv/weight", w)
    f:write("ids", rn.tensor({ 1, 2, 3 }, { dtype = "int64" }))
    f:write("img", rn.randint(0, 256, { 2, 3 }, { dtype = "uint8", seed = 2 }))
    f:write("n", rn.tensor({ -5, 7 }, { dtype = "int32" }))
    f:write("s", rn.tensor(2.5))
    f:write("t", w:transpose(1, 3)) -- any strides
    f:write("big", rn.randn({ 64, 10 }, { seed = 3 }), { compress = 6, chunk = 16 })
    f:set_attr("provenance", "h5_spec")
    f:set_attr("seed", 7)
    f:set_attr("/model/conv/weight", "role", "kernel")
    f:commit()
    assert.matches("closed", H.err(f.list, f))

    local g <close> = assert(rn.h5.open(path))
    assert.are.same({ "/big", "/ids", "/img", "/model/conv/weight", "/n", "/s", "/t" }, g:list())
    assert.are.equal(0, H.maxdiff(g:read("model/conv/weight"), w))
    assert.are.same({ 1, 2, 3 }, g:read("ids"):totable())
    assert.are.equal("int64", g:read("ids"):dtype())
    assert.are.equal("uint8", g:read("img"):dtype())
    assert.are.same({ -5, 7 }, g:read("n"):totable())
    assert.are.equal(2.5, g:read("s"):item())
    assert.are.equal(0, H.maxdiff(g:read("t"), w:transpose(1, 3)))
    assert.are.equal(0, H.maxdiff(g:read("big"), rn.randn({ 64, 10 }, { seed = 3 })))
    local dt, shape = g:info("t")
    assert.are.equal("float32", dt)
    assert.are.same({ 2, 3, 4 }, shape)
    assert.is_true(g:has("/model/conv/weight"))
    assert.is_false(g:has("/model/conv/bias"))
    local a = g:attrs()
    assert.are.equal("h5_spec", a.provenance)
    assert.are.equal(7, a.seed)
    assert.are.equal(rn.h5.format_version, a.format_version)
    assert.are.equal("kernel", g:attrs("/model/conv/weight").role)
    assert.are.same({ 4, 3, 2 }, g:read("model/conv/weight", { shape = { 4, -1, 2 } }):shape())
    assert.matches("h5 read.*model/conv/weight", H.err(g.read, g, "model/conv/weight", { shape = { 4, 3, 3 } }))
    assert.matches("absent", H.err(g.read, g, "absent"))
    assert.matches("read%-only", H.err(g.write, g, "x", rn.ones(1)))
    assert.matches("commit", H.err(g.commit, g))
  end)

  it("commits atomically: an error inside the scope or a discard keeps the old file", function()
    local path = dir .. "/atomic.h5"
    rn.h5.save(path, { a = rn.ones(3) })
    local ok = pcall(function()
      local f <close> = rn.h5.open(path, "w")
      f:write("a", rn.zeros(5))
      error("boom")
    end)
    assert.is_false(ok)
    assert.are.same({ 1, 1, 1 }, rn.h5.load(path).a:totable())
    local f = rn.h5.open(path, "w")
    f:write("a", rn.zeros(2))
    f:discard()
    assert.are.same({ 1, 1, 1 }, rn.h5.load(path).a:totable())
    do
      local g <close> = rn.h5.open(path, "w") -- a normal scope exit commits
      g:write("a", rn.zeros(4))
    end
    assert.are.same({ 0, 0, 0, 0 }, rn.h5.load(path).a:totable())
    rn.h5.open(dir .. "/abandoned.h5", "w"):write("a", rn.ones(1)) -- never closed: the collector discards it
    collectgarbage()
    collectgarbage()
    assert.is_nil(rn.file_type(dir .. "/abandoned.h5"))
    no_temporaries()
    assert.matches("h5.open", H.err(rn.h5.open, dir .. "/no/such/dir/x.h5", "w"))
    assert.matches("bad argument", H.err(rn.h5.open, path, "x"))
  end)

  it("appends rows to feature caches in place and reads row ranges", function()
    local path = dir .. "/cache.h5"
    rn.h5.save(path, {})
    local f <close> = assert(rn.h5.open(path, "a"))
    f:append("feats", rn.full({ 2, 3 }, 1))
    f:append("feats", rn.full({ 3, 3 }, 2))
    f:close()
    local g <close> = assert(rn.h5.open(path))
    assert.are.same({ 5, 3 }, g:read("feats"):shape())
    assert.are.same({ { 1, 1, 1 }, { 2, 2, 2 } }, g:read_rows("feats", 2, 2):totable())
    assert.matches("1%-based", H.err(g.read_rows, g, "feats", 0, 1))
  end)

  it("saves and loads sets, naming every missing, extra and mis-shaped tensor", function()
    local path = dir .. "/set.h5"
    rn.h5.save(path, { ["conv/weight"] = rn.zeros(8, 3, 3, 3), ["conv/bias"] = rn.zeros(8), extra = rn.zeros(1),
                       ids = rn.tensor({ 1 }, { dtype = "int64" }) },
               { prefix = "/model", attrs = { epoch = 3, note = "x" } })
    local all, attrs = rn.h5.load(path, { prefix = "/model" })
    assert.are.same({ 8, 3, 3, 3 }, all["conv/weight"]:shape())
    assert.are.equal(3, attrs.epoch)
    local ok = rn.h5.load(path, { prefix = "/model", allow_extra = true,
                                  expect = { ["conv/weight"] = { 8, 3, -1, 3 }, ids = { 1, dtype = "int64" } } })
    assert.are.same({ 8, 3, 3, 3 }, ok["conv/weight"]:shape())
    assert.are.equal("int64", ok.ids:dtype())
    local msg = H.err(rn.h5.load, path, { prefix = "/model",
      expect = { ["conv/weight"] = { 8, 3, 5, 5 }, ["conv/bias"] = { 8 }, ["head/weight"] = { 2, 8 },
                 ids = { 1, dtype = "int64" } } })
    assert.matches("missing: head/weight", msg)
    assert.matches("extra: extra", msg)
    assert.matches("conv/weight", msg)
    local shape_only = H.err(rn.h5.load, path, { prefix = "/model", allow_extra = true,
      expect = { ["conv/weight"] = { 8, 3, 5, 5 } } })
    assert.matches("conv/weight", shape_only)
    assert.matches("%[8,3,3,3%]", shape_only:gsub(" ", ""))
    local t, err = rn.h5.load(dir .. "/absent.h5")
    assert.is_nil(t)
    assert.matches("cannot open", err)
    assert.matches("not a tensor", H.err(rn.h5.save, path, { a = 1 }))
  end)

  it("refuses files that are not HDF5 or are cut short", function()
    local text = spit(dir .. "/text.h5", "just some text\n")
    assert.matches("not an HDF5 file", H.err(rn.h5.open, text))
    rn.h5.save(dir .. "/full.h5", { a = rn.randn({ 100 }, { seed = 1 }) })
    local f = assert(io.open(dir .. "/full.h5", "rb"))
    local bytes = f:read("a")
    f:close()
    local cut = spit(dir .. "/cut.h5", bytes:sub(1, #bytes - 200))
    assert.matches("truncated", H.err(rn.h5.open, cut))
  end)

  it("stores module state as HDF5 under /model and still reads the interim format", function()
    local net = rn.nn.Sequential(rn.nn.Conv2d(2, 4, 3, { seed = 1 }), rn.nn.BatchNorm2d(4))
    local path = dir .. "/net.h5"
    rn.save(path, net)
    local f <close> = assert(rn.h5.open(path))
    assert.is_true(f:has("/model/1/weight"))
    assert.is_true(f:has("/model/2/running_var"))
    assert.are.equal("realnet.state", f:attrs().content)
    assert.are.equal(1, f:attrs().format_version)
    local sd, names = rn.load(path)
    assert.are.equal(0, H.maxdiff(sd["1.weight"], net["1"].weight))
    assert.are.equal(#names, 6)
    local old = dir .. "/old.rns"
    rn.core.save_tensors(old, { "1.weight" }, { rn.ones(2) })
    assert.are.same({ 1, 1 }, rn.load(old)["1.weight"]:totable())
    assert.matches("bad tensor name", H.err(rn.save, dir .. "/x.h5", { ["a/b"] = rn.ones(1) }))
  end)
end)

describe("rn.tensorset", function()
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end) -- the last describe: busted runs them in order
  local f32 = string.pack("<ffffff", 1, 2, 3, 4, 5, 6)
  local f16 = string.pack("<I2I2I2", 0x3C00, 0x4000, 0xB800)  -- 1, 2, -0.5
  local bf16 = string.pack("<I2I2", 0x3F80, 0x4040)          -- 1, 3

  it("reads F32, F16 and BF16 safetensors as float32, with metadata", function()
    local path = spit(dir .. "/ok.safetensors",
      safetensors { { "a.weight", "F32", { 2, 3 }, f32 }, { "b", "F16", { 3 }, f16 }, { "c", "BF16", { 2 }, bf16 } })
    local s <close> = assert(rn.tensorset(path))
    assert.are.equal(3, #s)
    assert.are.same({ "a.weight", "b", "c" }, s:names())
    assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, s:load("a.weight"):totable())
    assert.are.same({ 1, 2, -0.5 }, s:load("b"):totable())
    assert.are.same({ 1, 3 }, s:load("c"):totable())
    local dt, shape, src = s:info("b")
    assert.are.equal("float32", dt)
    assert.are.same({ 3 }, shape)
    assert.are.equal("F16", src)
    assert.are.equal("pt", s:metadata().format)
    assert.is_true(s:has("c"))
    local all = s:load_all()
    assert.are.same({ 1, 3 }, all.c:totable())
    assert.matches("nope", H.err(s.load, s, "nope"))
    s:close()
    assert.matches("closed", H.err(s.names, s))
  end)

  it("refuses lying safetensors headers with clear errors", function()
    local function bad(name, bytes) return H.err(rn.tensorset, spit(dir .. "/" .. name, bytes)) end
    local past = bad("past.safetensors", safetensors({ { "a", "F32", { 2, 3 }, f32 } },
      function(h) return (h:gsub("%[0,24%]", "[0,2400]")) end))
    assert.matches("past%.safetensors", past)
    assert.matches("unknown", bad("dtype.safetensors", safetensors { { "a", "Q7", { 6 }, f32 } }))
    assert.matches("huge%.safetensors", bad("huge.safetensors", string.pack("<I8", 1 << 40) .. "{}"))
    assert.matches("mismatch%.safetensors", bad("mismatch.safetensors", safetensors { { "a", "F32", { 7 }, f32 } }))
    assert.matches("json%.safetensors", bad("json.safetensors", string.pack("<I8", 5) .. "{oops"))
    assert.matches("short%.safetensors", bad("short.safetensors", "abc"))
    local none, msg = rn.tensorset(dir .. "/absent.safetensors")
    assert.is_nil(none)
    assert.matches("absent", msg)
  end)

  it("opens folders of .npy files by relative path", function()
    os.execute("mkdir -p '" .. dir .. "/npy/layer1/0'")
    spit(dir .. "/npy/layer1/0/weight.npy", npy({ 2, 2 }, { 1, 2, 3, 4 }))
    spit(dir .. "/npy/bias.npy", npy({ 3 }, { 5, 6, 7 }))
    local s <close> = assert(rn.tensorset(dir .. "/npy"))
    assert.are.same({ "bias", "layer1/0/weight" }, s:names())
    assert.are.same({ { 1, 2 }, { 3, 4 } }, s:load("layer1/0/weight"):totable())
    assert.are.equal("npy", select(3, s:info("bias")))
  end)
end)
