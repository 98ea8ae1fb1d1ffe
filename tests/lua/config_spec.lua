-- realnet.config: typed dotted overrides, unknown keys listing the valid ones (nearest first), merges, the
-- dump -> load round trip, and recipes with scales and run functions.
local rn = require "realnet"
local config = require "realnet.config"
local H = require "rnhelp"

local tmp = os.tmpname()
os.remove(tmp)
assert(rn.mkdir(tmp))

local function write(name, text)
  local path = tmp .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local function defaults()
  return {
    seed = 7,
    trainer = {epochs = 10, lr = 1e-4, batch = 16, amp = false, dims = {256, 512, 512, 256}},
    data = {category = "bottle", size = 256, classes = {"good", "crack"}, ratios = {0.5, 0.5},
            _types = {weights = "path", mode = "choice:max|avg|maxavg", fraction = "number"}},
    rrs = {ratio = 1 / 3, on = true},
  }
end

describe("realnet.config", function()
  teardown(function() os.execute("rm -rf '" .. tmp .. "'") end)

  it("copies defaults and converts overrides to the default's type", function()
    local d = defaults()
    local cfg = config.new(d)
    config.apply(cfg, {["trainer.epochs"] = "5", ["trainer.lr"] = "3e-4", ["trainer.amp"] = "yes",
                       ["trainer.dims"] = "64,128", ["data.category"] = "tile", ["data.classes"] = "a,b,c",
                       ["data.ratios"] = "0.25,0.75", ["rrs.ratio"] = "1", ["seed"] = "-3",
                       ["data.weights"] = "w.h5", ["data.mode"] = "avg", ["data.fraction"] = "0.5"})
    assert.are.equal(5, cfg.trainer.epochs)
    assert.are.equal("integer", math.type(cfg.trainer.epochs))
    assert.are.equal(3e-4, cfg.trainer.lr)
    assert.is_true(cfg.trainer.amp)
    assert.same({64, 128}, cfg.trainer.dims)
    assert.are.equal("integer", math.type(cfg.trainer.dims[1]))
    assert.same({"a", "b", "c"}, cfg.data.classes)
    assert.same({0.25, 0.75}, cfg.data.ratios)
    assert.are.equal(1, cfg.rrs.ratio)
    assert.are.equal(-3, cfg.seed)
    assert.are.equal("w.h5", cfg.data.weights)
    assert.are.equal("avg", cfg.data.mode)
    assert.are.equal(0.5, cfg.data.fraction)
    assert.are.equal(10, d.trainer.epochs) -- the defaults are untouched
    config.apply(cfg, {{"data.weights", "none"}, {"trainer.dims", ""}})
    assert.is_nil(cfg.data.weights)
    assert.same({}, cfg.trainer.dims)
    assert.are.equal(5, config.get(cfg, "trainer.epochs"))
  end)

  it("names the key and the value when a conversion fails", function()
    local cfg = config.new(defaults())
    local cases = {
      {"trainer.epochs", "5.5", "config: trainer.epochs: expected an integer, got '5.5'"},
      {"trainer.lr", "fast", "config: trainer.lr: expected a number, got 'fast'"},
      {"trainer.amp", "maybe", "config: trainer.amp: expected true or false, got 'maybe'"},
      {"trainer.dims", "1,x", "config: trainer.dims: item 2: expected an integer, got 'x'"},
      {"data.mode", "maxav", "'maxav' is not one of max, avg, maxavg (did you mean maxavg?)"},
      {"trainer", "3", "config: 'trainer' is a section; set one of its keys: trainer.amp, trainer.batch"},
      {"trainer..lr", "3", "config: bad key 'trainer..lr'"},
    }
    for _, c in ipairs(cases) do
      local msg = H.err(config.apply, cfg, {[c[1]] = c[2]})
      assert.is_string(msg, c[1])
      assert.matches(c[3], msg, 1, true)
    end
  end)

  it("fails at once on an unknown key, listing the valid keys nearest first", function()
    local cfg = config.new(defaults())
    local msg = H.err(config.apply, cfg, {["trainer.epoch"] = "5"})
    assert.matches("config: unknown key 'trainer.epoch'; valid keys (nearest first): trainer.epochs, ", msg, 1, true)
    for _, k in ipairs{"seed", "data.weights", "data.classes", "rrs.on", "trainer.dims"} do
      assert.matches(k, msg, 1, true)
    end
    assert.is_nil(msg:find("_types", 1, true))
    msg = H.err(config.apply, cfg, {["trainr.epochs"] = "5"})
    assert.matches("valid keys (nearest first): trainer.epochs", msg, 1, true)
    msg = H.err(config.apply, cfg, {["seed.x"] = "5"})
    assert.matches("unknown key 'seed.x'", msg, 1, true)
    assert.same({"data.category", "data.classes", "data.fraction", "data.mode", "data.ratios", "data.size",
                 "data.weights", "rrs.on", "rrs.ratio", "seed", "trainer.amp", "trainer.batch", "trainer.dims",
                 "trainer.epochs", "trainer.lr"}, config.keys(cfg))
  end)

  it("merges tables strictly", function()
    local cfg = config.new(defaults())
    config.merge(cfg, {trainer = {epochs = 2, dims = {8, 8}}, data = {weights = "x.h5"}})
    assert.are.equal(2, cfg.trainer.epochs)
    assert.same({8, 8}, cfg.trainer.dims)
    assert.are.equal(16, cfg.trainer.batch)
    assert.are.equal("x.h5", cfg.data.weights)
    assert.matches("unknown key 'trainer.epoks' in my.lua",
                   H.err(config.merge, cfg, {trainer = {epoks = 1}}, "my.lua"), 1, true)
    assert.matches("trainer.epochs in my.lua: expected int, got number 1.5",
                   H.err(config.merge, cfg, {trainer = {epochs = 1.5}}, "my.lua"), 1, true)
  end)

  it("dumps every field as Lua that loads back to the same table", function()
    local cfg = config.new(defaults())
    cfg.extra = {name = 'quote " and \n newline', big = math.maxinteger, small = math.mininteger,
                 float_int = 2.0, tiny = 1e-300, third = 1 / 3, nan = 0 / 0, inf = -math.huge,
                 [3] = "three", ["not an identifier"] = true, nested = {{a = 1}, {b = {2, 3}}}}
    cfg.run = function() end
    local text = config.dump(cfg)
    assert.matches("^return {\n", text)
    assert.matches("-- run: a function (not written)", text, 1, true)
    assert.matches("dims = {256, 512, 512, 256},", text, 1, true)
    assert.matches("float_int = 2.0,", text, 1, true)
    local path = config.save(cfg, tmp .. "/config.lua")
    local back = assert(config.load(path))
    cfg.run = nil
    local nan = back.extra.nan
    assert.is_true(nan ~= nan)
    back.extra.nan, cfg.extra.nan = nil, nil
    assert.same(cfg, back)
    assert.are.equal("float", math.type(back.extra.float_int))
    assert.are.equal(math.mininteger, back.extra.small)
    assert.are.equal(1 / 3, back.extra.third)
    assert.matches("nan = 0/0,", text, 1, true)
    assert.are.equal(config.dump(cfg), config.dump(back))
    -- the loaded config still knows its typed fields
    config.apply(back, {["data.weights"] = "w.h5"})
    assert.are.equal("w.h5", back.data.weights)
  end)

  it("reports unreadable config files", function()
    local _, msg = config.load(tmp .. "/absent.lua")
    assert.matches("cannot open", msg, 1, true)
    _, msg = config.load(write("bad.lua", "return {"))
    assert.matches("config:", msg, 1, true)
    _, msg = config.load(write("num.lua", "return 3"))
    assert.matches("does not return a table", msg, 1, true)
    _, msg = config.load(write("os.lua", "return {x = os.time()}"))
    assert.matches("os", msg, 1, true) -- configs are data: no os, io or require in scope
  end)

  it("loads recipes with scales, a config file, overrides and a run function", function()
    local path = write("recipe.lua", [[
      local rn = require "realnet"          -- recipes may use the library
      local sizes = {256, 512}
      return {
        seed = 1,
        trainer = {epochs = 1000, batch = 16, dims = sizes},
        data = {size = 256, category = "tile"},
        scales = {
          smoke = {trainer = {epochs = 1, batch = 2}, data = {size = 32}},
          cpu = {trainer = {epochs = 20}},
          paper = {},
        },
        run = function(cfg) return "ran " .. cfg.trainer.epochs .. " " .. tostring(rn.version ~= nil) end,
      }
    ]])
    local cfg, run, info = config.load_recipe(path, {scale = "smoke", overrides = {["trainer.batch"] = "4"},
                                                     config = {data = {category = "bottle"}}})
    assert.are.equal(1, cfg.trainer.epochs)
    assert.are.equal(4, cfg.trainer.batch)
    assert.are.equal(32, cfg.data.size)
    assert.are.equal("bottle", cfg.data.category)
    assert.same({256, 512}, cfg.trainer.dims)
    assert.are.equal("smoke", cfg.scale)
    assert.is_nil(cfg.scales)
    assert.is_nil(cfg.run)
    assert.same({"cpu", "paper", "smoke"}, info.scales)
    assert.are.equal("ran 1 true", run(cfg))
    cfg = config.load_recipe(path)
    assert.are.equal(1000, cfg.trainer.epochs)
    assert.is_nil(cfg.scale)
    assert.matches("has no scale 'gpu' (scales: cpu, paper, smoke)",
                   H.err(config.load_recipe, path, {scale = "gpu"}), 1, true)
    assert.matches("unknown key 'trainer.epoch'",
                   H.err(config.load_recipe, path, {overrides = {["trainer.epoch"] = "1"}}), 1, true)
    local typo = write("typo.lua", "return {a = {b = 1}, scales = {smoke = {a = {c = 2}}}}")
    assert.matches("unknown key 'a.c' in scales.smoke", H.err(config.load_recipe, typo, {scale = "smoke"}), 1, true)
    local global_run = write("global.lua", "function run(cfg) return cfg.x end\nreturn {x = 5}")
    local c2, r2 = config.load_recipe(global_run)
    assert.are.equal(5, r2(c2))
    assert.matches("must return a config table", H.err(config.load_recipe, write("nil.lua", "local x = 1")), 1, true)
    assert.matches("recipe:", H.err(config.load_recipe, write("err.lua", "error('boom')")), 1, true)
  end)
end)
