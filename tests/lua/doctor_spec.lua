-- `realnet doctor` (the binary in $REALNET_BIN): clean datasets exit 0 with counts per split and defect; a broken
-- copy (a missing mask, a mask of the wrong size, a corrupt image, an unpaired mask) reports each problem by path
-- and exits 1; usage errors exit 2. Uses the shared magnetic_tile data when REALNET_SHARED has it, and a
-- synthetic dataset otherwise.
local rn = require "realnet"
local H = require "rnhelp"

local bin = assert(os.getenv("REALNET_BIN"), "REALNET_BIN must point at the built realnet binary")
local shared = os.getenv("REALNET_SHARED")
local mt = shared and (shared .. "/data/magnetic_tile")
local have_mt = mt and rn.file_type(mt) == "directory"

local tmp = H.tmpdir()
local q = H.q

local function doctor(args) return H.run(bin, tmp, "doctor " .. args) end

local function sh(cmd) assert(os.execute(cmd), cmd) end
local function dirname(p) return p:match("^(.*)/[^/]*$") end

local function image(path, h, w, c, seed)
  sh("mkdir -p " .. q(dirname(path)))
  rn.image.write_png(path, rn.rand({h, w, c}, {seed = seed}):mul(255):to("uint8"))
end

local function mask(path, h, w)
  sh("mkdir -p " .. q(dirname(path)))
  rn.image.write_png(path, rn.full({h, w}, 255, {dtype = "uint8"}))
end

-- A small MVTec-layout category: from magnetic_tile (a few files of each split) or synthetic.
local function make_category(dir)
  if have_mt then
    local function copy(sub, n, with_masks)
      sh("mkdir -p " .. q(dir .. "/" .. sub))
      local names = rn.listdir(mt .. "/" .. sub)
      for i = 1, n do
        sh("cp " .. q(mt .. "/" .. sub .. "/" .. names[i]) .. " " .. q(dir .. "/" .. sub .. "/"))
        if with_masks then
          local gt = sub:gsub("^test/", "ground_truth/")
          sh("mkdir -p " .. q(dir .. "/" .. gt))
          local m = names[i]:gsub("%.png$", "_mask.png")
          sh("cp " .. q(mt .. "/" .. gt .. "/" .. m) .. " " .. q(dir .. "/" .. gt .. "/"))
        end
      end
    end
    copy("train/good", 4)
    copy("test/good", 2)
    copy("test/blowhole", 3, true)
    copy("test/crack", 2, true)
  else
    for i = 0, 3 do image(("%s/train/good/%03d.png"):format(dir, i), 30, 40, 1, i) end
    for i = 0, 1 do image(("%s/test/good/%03d.png"):format(dir, i), 30, 40, 1, 10 + i) end
    for i = 0, 2 do
      image(("%s/test/blowhole/%03d.png"):format(dir, i), 30, 40, 1, 20 + i)
      mask(("%s/ground_truth/blowhole/%03d_mask.png"):format(dir, i), 30, 40)
    end
    for i = 0, 1 do
      image(("%s/test/crack/%03d.png"):format(dir, i), 30, 40, 1, 30 + i)
      mask(("%s/ground_truth/crack/%03d_mask.png"):format(dir, i), 30, 40)
    end
  end
end

local function first(dir) return rn.listdir(dir)[1] end

describe("realnet doctor", function()
  teardown(function() os.execute("rm -rf " .. q(tmp)) end)

  it("passes the shared magnetic_tile data with counts per split and defect", function()
    if not have_mt then pending("no shared magnetic_tile data"); return end
    local out, err, code = doctor(q(mt))
    assert.are.equal(0, code, out .. err)
    assert.matches("OK: no problems found", out, 1, true)
    assert.matches("train%s+good%s+762%s+0", out)
    assert.matches("test%s+blowhole%s+115%s+115", out)
    assert.matches("1344 images, 392 masks checked", out, 1, true)
    assert.not_matches("PROBLEM", out)
  end)

  it("passes a clean copy and a dataset root holding categories", function()
    make_category(tmp .. "/root/tile")
    make_category(tmp .. "/root/tile2")
    local out, err, code = doctor(q(tmp .. "/root/tile"))
    assert.are.equal(0, code, out .. err)
    assert.matches("test%s+crack%s+2%s+2", out)
    out, err, code = doctor(q(tmp .. "/root") .. " --dataset mvtec --threads 2")
    assert.are.equal(0, code, out .. err)
    assert.matches("root/tile (mvtec)", out, 1, true)
    assert.matches("root/tile2 (mvtec)", out, 1, true)
    out, err, code = doctor(q(tmp .. "/root") .. " --category tile2")
    assert.are.equal(0, code, out .. err)
    assert.not_matches("root/tile ", out, 1, true)
  end)

  it("reports a missing mask, a mask of the wrong size, a corrupt image and an unpaired mask by path", function()
    local c = tmp .. "/broken/tile"
    make_category(c)
    local bh = first(c .. "/test/blowhole"):gsub("%.png$", "")
    local cr = first(c .. "/test/crack"):gsub("%.png$", "")
    local good = first(c .. "/test/good")
    os.remove(c .. "/ground_truth/blowhole/" .. bh .. "_mask.png")                      -- missing mask
    local wrong = c .. "/ground_truth/crack/" .. cr .. "_mask.png"
    rn.image.write_png(wrong, rn.full({7, 9}, 255, {dtype = "uint8"}))                    -- wrong size
    local f = assert(io.open(c .. "/test/good/" .. good, "wb")); f:write("not an image"); f:close() -- corrupt
    mask(c .. "/ground_truth/crack/999_mask.png", 8, 8)                                    -- unpaired
    local out, err, code = doctor(q(c))
    assert.are.equal(1, code, out .. err)
    assert.matches("PROBLEM: missing mask: " .. c .. "/test/blowhole/" .. bh .. ".png", out, 1, true)
    assert.matches("PROBLEM: mask size: " .. wrong .. ": mask is 9x7", out, 1, true)
    assert.matches("PROBLEM: unreadable: " .. c .. "/test/good/" .. good, out, 1, true)
    assert.matches("PROBLEM: unpaired mask: " .. c .. "/ground_truth/crack/999_mask.png", out, 1, true)
    assert.matches("4 problems found", out, 1, true)
  end)

  it("checks folders and reports an empty train split", function()
    image(tmp .. "/fold/normal/a.png", 8, 8, 3, 1)
    image(tmp .. "/fold/bad/b.png", 8, 8, 3, 2)
    mask(tmp .. "/fold/masks/bad/b_mask.png", 8, 8)
    local out, err, code = doctor(q(tmp .. "/fold") .. " --dataset folder --normal normal --masks masks")
    assert.are.equal(0, code, out .. err)
    assert.matches("test%s+bad%s+1%s+1", out)
    sh("mkdir -p " .. q(tmp .. "/empty/train/good") .. " " .. q(tmp .. "/empty/test/good"))
    image(tmp .. "/empty/test/good/x.png", 8, 8, 3, 3)
    out, err, code = doctor(q(tmp .. "/empty"))
    assert.are.equal(1, code, out .. err)
    assert.matches("PROBLEM: empty split: " .. tmp .. "/empty/train/good", out, 1, true)
  end)

  it("exits 2 on usage errors and 0 for --help", function()
    local _, err, code = doctor("")
    assert.are.equal(2, code)
    assert.matches("no dataset directory", err, 1, true)
    _, err, code = doctor(q(tmp .. "/absent"))
    assert.are.equal(2, code)
    assert.matches("does not exist", err, 1, true)
    _, err, code = doctor(q(tmp) .. " --dataset imagenet")
    assert.are.equal(2, code)
    assert.matches("unknown dataset kind 'imagenet'", err, 1, true)
    _, err, code = doctor(q(tmp) .. " --bogus")
    assert.are.equal(2, code)
    assert.matches("unknown option --bogus", err, 1, true)
    local out
    out, _, code = doctor("--help")
    assert.are.equal(0, code)
    assert.matches("usage: realnet doctor DIR", out, 1, true)
  end)
end)
