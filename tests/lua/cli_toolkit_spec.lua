-- The CLI toolkit: realnet.cli (parsing, typed options, suggestions, --help, exit codes through the binary),
-- realnet.progress (terminal and plain modes, captured), realnet.rundir (files, log tee, atomic writes, CSV)
-- and realnet.json (stable order, escaping, NaN/inf, round trip), plus the rn.isatty/term_width/mkdir helpers.
local rn = require "realnet"
local cli = require "realnet.cli"
local progress = require "realnet.progress"
local rundir = require "realnet.rundir"
local json = require "realnet.json"

local tmp = os.tmpname()
os.remove(tmp)
assert(rn.mkdir(tmp))

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local SPEC = {
  name = "train",
  positional = {{"rundir", metavar = "RUNDIR"}},
  options = {
    {"--category", help = "category"},
    {"--epochs", type = "int", default = 10, min = 1},
    {"--lr", type = "number"},
    {"--weights", type = "path"},
    {"--quick", type = "flag"},
    {"--afs", type = "list", of = "int", count = 4},
    {"--rrs-mode", type = "choice", choices = {"max", "avg", "maxavg"}, default = "maxavg"},
    {"--image", multi = true, alias = "-I"},
  },
  overrides = true,
}

describe("realnet.cli", function()
  it("parses --k v, --k=v, flags, lists, choices and defaults", function()
    local o, ov = cli.try_parse({"--category", "bottle", "--epochs=5", "--lr", "1e-3", "--quick", "runs/a",
                                 "--afs=1,2,3,4", "--rrs-mode", "avg", "-I", "a.png", "--image=b.png"}, SPEC)
    assert.is_table(o, ov)
    assert.are.equal("bottle", o.category)
    assert.are.equal(5, o.epochs)
    assert.are.equal("integer", math.type(o.epochs))
    assert.are.equal(1e-3, o.lr)
    assert.is_true(o.quick)
    assert.are.equal("runs/a", o.rundir)
    assert.same({1, 2, 3, 4}, o.afs)
    assert.are.equal("avg", o.rrs_mode)
    assert.same({"a.png", "b.png"}, o.image)
    assert.same({}, ov)
    o = assert(cli.try_parse({}, SPEC))
    assert.are.equal(10, o.epochs)
    assert.are.equal("maxavg", o.rrs_mode)
    assert.is_false(o.quick)
    assert.is_nil(o.category)
    o = assert(cli.try_parse({"--quick=false", "--lr", "-0.5", "--", "--odd-dir"}, SPEC))
    assert.is_false(o.quick)
    assert.are.equal(-0.5, o.lr)
    assert.are.equal("--odd-dir", o.rundir)
  end)

  it("returns dotted overrides apart, in both spellings", function()
    local o, ov = cli.try_parse({"--trainer.epochs=5", "--data.dims", "1,2", "--epochs", "3"}, SPEC)
    assert.are.equal(3, o.epochs)
    assert.same({["trainer.epochs"] = "5", ["data.dims"] = "1,2"}, ov)
    local plain = {name = "doctor", options = {{"--category"}}}
    local _, msg = cli.try_parse({"--trainer.epochs=5"}, plain)
    assert.matches("unknown option --trainer.epochs", msg, 1, true)
  end)

  it("names the option and the value in conversion errors", function()
    local cases = {
      {{"--epochs", "ten"}, "--epochs: expected an integer, got 'ten'"},
      {{"--epochs=2.5"}, "--epochs: expected an integer, got '2.5'"},
      {{"--epochs=0"}, "--epochs: expected a value >= 1, got '0'"},
      {{"--lr=nan"}, "--lr: expected a finite number, got 'nan'"},
      {{"--quick=maybe"}, "--quick: expected true or false, got 'maybe'"},
      {{"--afs=1,2,x,4"}, "--afs: item 3: expected an integer, got 'x'"},
      {{"--afs=1,2"}, "--afs: expected 4 comma-separated values, got 2"},
      {{"--rrs-mode=maxav"}, "'maxav' is not one of max, avg, maxavg (did you mean maxavg?)"},
      {{"--category"}, "--category needs a value"},
      {{"--category", "--quick"}, "--category needs a value"},
      {{"--weights="}, "--weights: needs a non-empty value"},
      {{"a", "b"}, "unexpected argument 'b' (expected RUNDIR only)"},
    }
    for _, c in ipairs(cases) do
      local o, msg = cli.try_parse(c[1], SPEC)
      assert.is_nil(o, table.concat(c[1], " "))
      assert.matches(c[2], msg, 1, true)
    end
  end)

  it("lists the valid options for an unknown one, with the closest", function()
    local _, msg = cli.try_parse({"--epoch=5"}, SPEC)
    assert.matches("unknown option --epoch (did you mean --epochs?)", msg, 1, true)
    assert.matches("valid options: --category, --epochs, --lr", msg, 1, true)
    _, msg = cli.try_parse({"--zzzzzzzzzz"}, SPEC)
    assert.matches("unknown option --zzzzzzzzzz; valid options", msg, 1, true)
    assert.is_nil(msg:find("did you mean", 1, true))
  end)

  it("checks required options and positionals, with custom messages", function()
    local spec = {name = "x", positional = {{"dir", required = true, missing = "no dataset directory given"},
                                             {"rest", variadic = true}},
                  options = {{"--out", required = true}}}
    local _, msg = cli.try_parse({}, spec)
    assert.are.equal("no dataset directory given", msg)
    _, msg = cli.try_parse({"d"}, spec)
    assert.are.equal("--out is required", msg)
    local o = assert(cli.try_parse({"d", "e", "f", "--out", "o"}, spec))
    assert.are.equal("d", o.dir)
    assert.same({"e", "f"}, o.rest)
  end)

  it("generates help and reports --help", function()
    local o, what = cli.try_parse({"--epochs", "3", "--help"}, SPEC)
    assert.is_nil(o)
    assert.are.equal("help", what)
    local text = cli.help(SPEC)
    assert.matches("^usage: realnet train %[RUNDIR%] %[options%]", text)
    assert.matches("--epochs N%s+%(default 10%)", text)
    assert.matches("--rrs-mode max|avg|maxavg", text, 1, true)
    assert.matches("--afs INT,...", text, 1, true)
    assert.matches("--image, -I NAME", text, 1, true)
    assert.matches("--SECTION.KEY=VALUE", text, 1, true)
  end)

  it("accepts converter functions", function()
    local spec = {name = "x", options = {{"--pair", type = function(s)
      local a, b = s:match("^(%d+)x(%d+)$")
      if not a then return nil, "expected WxH" end
      return {tonumber(a), tonumber(b)}
    end}}}
    assert.same({3, 4}, (cli.try_parse({"--pair=3x4"}, spec)).pair)
    local _, msg = cli.try_parse({"--pair=3"}, spec)
    assert.are.equal("--pair: expected WxH", msg)
  end)

  it("sorts candidates nearest first", function()
    local list, near = cli.nearest("trainer.epoch", {"data.root", "trainer.lr", "trainer.epochs"})
    assert.are.equal("trainer.epochs", list[1])
    assert.are.equal("trainer.epochs", near)
    assert.are.equal(0, cli.distance("abc", "abc"))
    assert.are.equal(3, cli.distance("", "abc"))
    assert.are.equal(1, cli.distance("kitten", "sitten"))
  end)

  it("exits 2 with a hint on usage errors and 0 after --help (through the binary)", function()
    local bin = os.getenv("REALNET_BIN")
    if not bin then pending("REALNET_BIN not set") return end
    local script = tmp .. "/tool.lua"
    local f = assert(io.open(script, "w"))
    f:write([[
      local cli = require "realnet.cli"
      local config = require "realnet.config"
      local spec = {name = "tool", options = {{"--epochs", type = "int"}}, overrides = true}
      local o, ov = cli.parse(arg, spec)
      local cfg = cli.try(spec, config.apply, {trainer = {epochs = 1}}, ov)
      print("epochs", o.epochs, cfg.trainer.epochs)
    ]])
    f:close()
    local function run(args)
      local cmd = ("%s run %s %s > %s 2> %s"):format(q(bin), q(script), args, q(tmp .. "/out"), q(tmp .. "/err"))
      local _, _, code = os.execute(cmd)
      return slurp(tmp .. "/out"), slurp(tmp .. "/err"), code
    end
    local out, err, code = run("--epochs 4 --trainer.epochs=3")
    assert.are.equal(0, code, err)
    assert.are.equal("epochs\t4\t3\n", out)
    out, err, code = run("--trainer.epoch=3")
    assert.are.equal(2, code)
    assert.matches("realnet tool: config: unknown key 'trainer.epoch'; valid keys (nearest first): trainer.epochs",
                   err, 1, true)
    assert.is_nil(err:find("traceback", 1, true))
    out, err, code = run("--epohcs 4")
    assert.are.equal(2, code)
    assert.matches("realnet tool: unknown option --epohcs (did you mean --epochs?)", err, 1, true)
    assert.matches("run 'realnet tool --help'", err, 1, true)
    out, err, code = run("--help")
    assert.are.equal(0, code, err)
    assert.matches("usage: realnet tool [options]", out, 1, true)
  end)
end)

-- A writer that keeps what it was given, and a clock the test moves.
local function capture()
  local buf = {}
  return {write = function(self, ...) for _, s in ipairs{...} do buf[#buf + 1] = s end return self end,
          flush = function() end, text = function() return table.concat(buf) end}
end

describe("realnet.progress", function()
  it("prints plain periodic lines when not on a terminal", function()
    local out, now, logged = capture(), 0, {}
    local bar = progress.new{total = 100, label = "train", unit = "img", out = out, tty = false,
                             clock = function() return now end, plain_interval = 10,
                             terms = {"loss", "ce"}, sink = function(l) logged[#logged + 1] = l end}
    for step = 1, 100 do
      now = step * 0.5 -- 0.5 s per step of 8 images: 16 img/s
      bar:update(step, {loss = 1 / step, ce = 0.5, mse = 0.25}, 8)
    end
    bar:finish()
    local lines = {}
    for l in out.text():gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(6, #lines) -- at 10, 20, 30, 40 s, then the final line
    assert.is_nil(out.text():find("\r", 1, true))
    assert.are.equal(" 20/100 (20%)", lines[1]:match("^train  ( *%d+/100 %(%d+%%%))"))
    assert.matches("loss 0.05  ce 0.5  mse 0.25", lines[1], 1, true)
    assert.matches("16 img/s", lines[1], 1, true)
    assert.matches("ETA 0:40", lines[1], 1, true)
    assert.matches("^train  100/100 %(100%%%).*took 0:50$", lines[#lines])
    assert.same(lines, logged)
  end)

  it("redraws one line with carriage returns on a terminal, throttled", function()
    local out, now = capture(), 0
    local bar = progress.new{total = 1000, label = "eval", out = out, tty = true, width = 200,
                             clock = function() return now end, interval = 0.1}
    for step = 1, 1000 do
      now = step * 0.001 -- 1000 updates over 1 s: about 10 redraws
      bar:update(step, {loss = 0.1})
    end
    bar:finish()
    local text = out.text()
    local draws = select(2, text:gsub("\r", ""))
    assert.is_true(draws >= 9 and draws <= 13, "draws: " .. draws)
    assert.are.equal(1, select(2, text:gsub("\n", "")))
    assert.matches("eval  1000/1000 [====================] 100%  loss 0.1", text, 1, true)
    assert.matches("took 0:01\n$", text)
    assert.matches("[===>                ]  20%", text, 1, true)
  end)

  it("shows counts without a total, notes above the bar, and truncates to the width", function()
    local out, now = capture(), 0
    local bar = progress.new{label = "sample", out = out, tty = true, width = 30,
                             clock = function() return now end}
    now = 1
    bar:tick({loss = 0.123456789})
    bar:note("checkpoint saved")
    bar:finish()
    for line in out.text():gmatch("[^\r\n]+") do assert.is_true(#line <= 29, line) end
    assert.matches("checkpoint saved\n", out.text(), 1, true)
    assert.matches("sample  1", out.text(), 1, true)
    assert.are.equal("1:01:01", progress.hms(3661))
    assert.are.equal("0:59", progress.hms(59.4))
  end)
end)

describe("realnet.json", function()
  it("writes keys in a stable order, escapes strings and nulls NaN/inf with a warning", function()
    local warned = {}
    local text = json.encode({b = 1, a = {1, 2.5, 0 / 0}, c = 'q"\\\n\t\1', d = math.huge, e = json.array({}),
                              f = {}, g = true, h = json.null, image_auroc = 0.25},
                             {order = {"image_auroc", "zzz"}, warn = function(m) warned[#warned + 1] = m end})
    assert.are.equal('{"image_auroc":0.25,"a":[1,2.5,null],"b":1,"c":"q\\"\\\\\\n\\t\\u0001","d":null,"e":[],' ..
                     '"f":{},"g":true,"h":null}', text)
    assert.are.equal(2, #warned)
    assert.matches("value.a[3] is NaN", warned[1], 1, true)
    assert.matches("value.d is inf", warned[2], 1, true)
  end)

  it("keeps the shortest exact text of numbers and reads its own output back", function()
    assert.are.equal("0.1", json.number(0.1))
    assert.are.equal("3", json.number(3))
    assert.are.equal("0.30000000000000004", json.number(0.1 + 0.2))
    local v = {name = "bottle", list = {1, -2.5e-7, 3}, nested = {ok = false, s = "é\"x\n"}}
    local back = json.decode(json.encode(v, {indent = 2}))
    assert.same(v, back)
    assert.are.equal(json.null, json.decode("[null]")[1])
    assert.are.equal("\u{1F600}", json.decode('"\\ud83d\\ude00"'))
  end)

  it("refuses what JSON cannot hold and malformed text", function()
    assert.matches("value.f is a function", select(2, pcall(json.encode, {f = print})), 1, true)
    local t = {}; t.self = t
    assert.matches("contains itself", select(2, pcall(json.encode, t)), 1, true)
    assert.matches("at byte 6", select(2, pcall(json.decode, '{"a" 1}')), 1, true)
    assert.matches("trailing text", select(2, pcall(json.decode, "1 2")), 1, true)
  end)
end)

describe("realnet.rundir", function()
  it("creates a timestamped run directory, tees print into log.txt with times, and restores print", function()
    local real_print = print
    local orig = function() end -- keeps the spec's output clean; the tee wraps whatever print is
    _G.print = orig
    local run = rundir.create{root = tmp .. "/runs"}
    local run2 = rundir.create{root = tmp .. "/runs", tee = false}
    run2:close()
    assert.matches("^%d%d%d%d%d%d%d%d%-%d%d%d%d%d%d", run.name)
    assert.are_not.equal(run.dir, run2.dir) -- same second: a suffix keeps them apart
    assert.are.equal("directory", rn.file_type(run.dir))
    print("hello", 42)
    run:write_log("only in the log\nsecond line")
    run:close()
    assert.are.equal(orig, print)
    print("not logged")
    _G.print = real_print
    local log = slurp(run.dir .. "/log.txt")
    assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d  hello\t42\n", log)
    assert.matches("  only in the log\n[%d%- :]+  second line\n$", log)
    assert.is_nil(log:find("not logged", 1, true))
  end)

  it("writes config, JSON and CSV files atomically, and reopens a run", function()
    local run <close> = rundir.create{dir = tmp .. "/runs/named/", tee = false}
    assert.are.equal(tmp .. "/runs/named", run.dir)
    run:save_config({trainer = {epochs = 3}})
    local cfg = assert(require("realnet.config").load(run:path("config.lua")))
    assert.are.equal(3, cfg.trainer.epochs)
    local old_stderr = io.stderr
    io.stderr = io.open("/dev/null", "w")
    run:write_json("metrics.json", {image_auroc = 0.5, pixel_auroc = 0 / 0, aupro = 0.25},
                   {order = {"image_auroc", "pixel_auroc"}})
    io.stderr:close()
    io.stderr = old_stderr
    assert.are.equal('{\n  "image_auroc": 0.5,\n  "pixel_auroc": null,\n  "aupro": 0.25\n}\n',
                     slurp(run:path("metrics.json")))
    assert.matches("warning: json: value.pixel_auroc is NaN", slurp(run:path("log.txt")), 1, true)
    run:write_csv("metrics.csv", {"category", "image_auroc"},
                  {{category = "bottle", image_auroc = 0.1}, {"a,b", 1 / 0}})
    assert.are.equal('category,image_auroc\nbottle,0.1\n"a,b",inf\n', slurp(run:path("metrics.csv")))
    do
      local w <close> = run:csv("scores.csv", {"path", "score", "label"})
      w:row{path = 'say "hi"', score = 0.5, label = 1}
      w:row{path = "line\nbreak", score = 0 / 0}
      w:row{" padded", -2, true}
      assert.is_nil(rn.file_type(run:path("scores.csv"))) -- only renamed into place on close
    end
    assert.are.equal('path,score,label\n"say ""hi""",0.5,1\n"line\nbreak",nan,\n" padded",-2,true\n',
                     slurp(run:path("scores.csv")))
    local header, rows = rundir.read_csv(run:path("scores.csv"))
    assert.same({"path", "score", "label"}, header)
    assert.same({{'say "hi"', "0.5", "1"}, {"line\nbreak", "nan", ""}, {" padded", "-2", "true"}}, rows)
    for _, name in ipairs(rn.listdir(run.dir)) do assert.is_nil(name:find("tmp", 1, true), name) end
    run:close()
    local again = assert(rundir.open(tmp .. "/runs/named", {tee = false}))
    again:write_log("second session")
    again:close()
    assert.matches("second session", slurp(tmp .. "/runs/named/log.txt"), 1, true)
    assert.is_nil(rundir.open(tmp .. "/runs/absent"))
  end)

  it("makes nested directories and fails clearly where a file is in the way", function()
    local p = tmp .. "/a/b/c"
    assert.are.equal(p, rundir.mkdir(p))
    assert.are.equal("directory", rn.file_type(p))
    rundir.write_atomic(tmp .. "/a/file", "x")
    assert.matches("a file is in the way", select(2, pcall(rundir.mkdir, tmp .. "/a/file/d")), 1, true)
    assert.matches("is not a directory", select(2, pcall(rundir.create, {dir = tmp .. "/a/file"})), 1, true)
    assert.matches("cannot write", select(2, pcall(rundir.write_atomic, tmp .. "/nowhere/x/y", "z")), 1, true)
    local run = rundir.create{dir = tmp .. "/r", tee = false}
    assert.are.equal(tmp .. "/r/maps/x", run:subdir("maps", "x"))
    run:close()
  end)

  it("gives progress bars whose plain lines reach the log", function()
    local run = rundir.create{dir = tmp .. "/p", tee = false}
    local out = capture()
    local bar = run:progress{total = 2, label = "train", out = out, tty = false}
    bar:update(1); bar:update(2); bar:finish()
    run:close()
    assert.matches("train  2/2 %(100%%%)", slurp(tmp .. "/p/log.txt"))
  end)
end)

describe("terminal helpers", function()
  it("knows files are not terminals", function()
    local f <close> = assert(io.open(tmp .. "/tty", "w"))
    assert.is_false(rn.isatty(f))
    assert.is_nil(rn.term_width(f))
    assert.is_boolean(rn.isatty(1))
    local g = assert(io.open(tmp .. "/tty2", "w"))
    g:close()
    assert.is_false(rn.isatty(g))
    assert.matches("out of range", select(2, pcall(rn.isatty, -1)), 1, true)
  end)
end)

teardown(function() os.execute("rm -rf " .. q(tmp)) end)
