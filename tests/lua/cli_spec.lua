-- The realnet binary (path in $REALNET_BIN): --version, -e, run with args, -i, help, subcommands, the REPL on
-- piped input, exit codes, and the determinism acceptance for 1 and 2 threads.
local bin = assert(os.getenv("REALNET_BIN"), "REALNET_BIN must point at the built realnet binary")
local H = require "rnhelp"

local tmp = H.tmpdir()
local q, slurp = H.q, H.slurp

-- Runs `realnet <args>` (a shell fragment) with optional env prefix and stdin text; returns stdout, stderr, code.
local function run(args, opts) return H.run(bin, tmp, args, opts) end

local function write(name, text)
  local path = tmp .. "/" .. name
  local f = io.open(path, "wb"); f:write(text); f:close()
  return path
end

describe("realnet binary", function()
  teardown(function() os.execute("rm -rf " .. q(tmp)) end)

  it("prints its version", function()
    local out, _, code = run("--version")
    assert.are.equal(0, code)
    assert.matches("^realnet %d+%.%d+%.%d+ %(Lua 5%.4", out)
  end)

  it("runs -e chunks with realnet preloaded", function()
    local out, _, code = run("-e " .. q('local rn = require "realnet"; print(rn.ones({2, 2}):sum():item(), #arg, arg[1])') ..
      " extra")
    assert.are.equal(0, code)
    assert.are.equal("4.0\t1\textra\n", out)
  end)

  it("runs a script with an arg table and varargs as lua does", function()
    local script = write("args.lua", [[
      local rn = require "realnet"
      print(arg[0]:match("args%.lua$") ~= nil, #arg, arg[1], arg[2], select("#", ...), (...))
    ]])
    local out, err, code = run("run " .. q(script) .. " one 'two words'")
    assert.are.equal(0, code, err)
    assert.are.equal("true\t2\tone\ttwo words\t2\tone\n", out)
  end)

  it("reports script errors with a traceback on stderr and exit code 1", function()
    local script = write("fail.lua", "local rn = require 'realnet'\nrn.zeros(-1)\n")
    local out, err, code = run("run " .. q(script))
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("negative size", err)
    assert.matches("stack traceback", err)
    local _, err2, code2 = run("run " .. q(tmp .. "/absent.lua"))
    assert.are.equal(2, code2)
    assert.matches("cannot open script", err2)
    local _, err3, code3 = run("-e " .. q("local x = (")) -- a syntax error
    assert.are.equal(1, code3)
    assert.matches("unexpected symbol", err3)
  end)

  it("lists the subcommands with their descriptions in help", function()
    local out, _, code = run("help")
    assert.are.equal(0, code)
    assert.matches("run FILE%.lua", out)
    assert.matches("\n%s+demo%s+Train a small convnet", out)
    assert.matches("\n%s+help%s+List the realnet commands", out)
  end)

  it("runs a subcommand script from scripts/", function()
    local out, err, code = run("demo --steps 3 --n 16")
    assert.are.equal(0, code, err)
    assert.matches("step   3/3", out)
    assert.matches("final training accuracy", out)
    local _, err2, code2 = run("demo --bogus 1")
    assert.are.equal(2, code2)
    assert.matches("unknown or incomplete option", err2)
  end)

  it("rejects an unknown subcommand with a hint and exit code 2", function()
    local out, err, code = run("frobnicate")
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.matches("unknown command 'frobnicate'", err)
    assert.matches("realnet help", err)
    local _, err2, code2 = run("--frob")
    assert.are.equal(2, code2)
    assert.matches("unknown option", err2)
  end)

  it("finds scripts and the library under REALNET_HOME", function()
    os.execute("mkdir -p " .. q(tmp .. "/home/scripts"))
    write("home/scripts/hello.lua", "-- Say hello.\nprint('hello ' .. (arg[1] or ''), require('realnet').home)\n")
    -- the library: link the source tree's lua/ (the directory holding realnet/init.lua)
    local lib = package.searchpath("realnet", package.path):match("^(.*)/realnet/init%.lua$")
    os.execute("ln -s " .. q(lib) .. " " .. q(tmp .. "/home/lua"))
    local out, err, code = run("hello world", { env = "REALNET_HOME=" .. q(tmp .. "/home") })
    assert.are.equal(0, code, err)
    assert.are.equal("hello world\t" .. tmp .. "/home\n", out)
  end)

  it("evaluates piped REPL input, printing expressions", function()
    local out, err, code = run("", { stdin = "1 + 1\nrn.ones({2, 3})\nt = {}\nfor i = 1, 3 do\n  t[i] = i\nend\n#t\n" ..
      "realnet == rn\nerror('oops')\nprint('after')\n" })
    assert.are.equal(0, code)
    assert.matches("^2\n", out)
    assert.matches("tensor%[2,3%] float32 cpu", out)
    assert.matches("\n3\ntrue\n", out)
    assert.matches("oops", err)
    assert.matches("after\n$", out)
  end)

  it("runs a file and then the REPL with -i", function()
    local script = write("setup.lua", "answer = 42\n")
    local out, err, code = run("-i " .. q(script), { stdin = "answer + 1\n" })
    assert.are.equal(0, code, err)
    assert.are.equal("43\n", out)
  end)

  it("prints the same seeded randn mean on every run and for 1 and 2 threads", function()
    local chunk = q('local rn=require"realnet"; print(rn.randn({2,3,8,8},{seed=1}):mean())')
    local outs = {}
    for _, env in ipairs { "", "", "OMP_NUM_THREADS=1", "OMP_NUM_THREADS=2" } do
      local out, err, code = run("-e " .. chunk, { env = env })
      assert.are.equal(0, code, err)
      outs[#outs + 1] = out
    end
    assert.matches("^tensor%[%] float32 cpu value %-?%d", outs[1])
    for i = 2, #outs do assert.are.equal(outs[1], outs[i]) end
  end)
end)
