-- Warm start of the SDAS U-Net from a guided-diffusion checkpoint: a safetensors file the test writes itself
-- (a tiny "pretrained" U-Net with 5 classes, DataParallel's module. prefix, one foreign tensor), converted with
-- `realnet import --arch guided-diffusion` and used by `realnet sdas train --init` in both forms; mismatching
-- tensors (the class embedding) are listed and keep their initialisation.
local rn = require "realnet"
local H = require "rnhelp"

local bin = assert(os.getenv("REALNET_BIN"), "REALNET_BIN must point at the built realnet binary")
local dir = H.tmpdir()
local q = H.q

local function run(args) return H.run(bin, dir, args, {env = "OMP_WAIT_POLICY=passive"}) end

local TINY = "--image-size 16 --batch 4 --model.model_channels=8 --model.channel_mult=1,2 " ..
  "--model.attention_resolutions=2 --model.num_head_channels=8 --trainer.val_n=2 --diffusion.val_respace=ddim4 " ..
  "--trainer.val_every=1000"

local data = H.tiny_dataset(dir .. "/data", {"aa", "bb"}, 4)

teardown(function() os.execute("rm -rf " .. q(dir)) end)

-- A safetensors file from {{name, shape, float32 values}, ...} (written here: the engine only reads them).
local function safetensors(path, entries)
  local parts, data_parts, off = {}, {}, 0
  for _, e in ipairs(entries) do
    local vals, chunks = e[3], {}
    for i = 1, #vals, 200 do
      local j = math.min(i + 199, #vals)
      chunks[#chunks + 1] = string.pack("<" .. ("f"):rep(j - i + 1), table.unpack(vals, i, j))
    end
    local bytes = table.concat(chunks)
    parts[#parts + 1] = ('"%s":{"dtype":"F32","shape":[%s],"data_offsets":[%d,%d]}'):format(e[1],
      table.concat(e[2], ","), off, off + #bytes)
    data_parts[#data_parts + 1] = bytes
    off = off + #bytes
  end
  local header = "{" .. table.concat(parts, ",") .. "}"
  return H.spit(path, string.pack("<I8", #header) .. header .. table.concat(data_parts))
end

describe("warm start", function()
  -- a "pretrained" U-Net of the tiny layout with 5 classes (as the ImageNet model has 1000), saved with
  -- DataParallel's module. prefix and one tensor the U-Net does not have
  local src = rn.sdas.unet{in_channels = 3, model_channels = 8, num_res_blocks = 1, channel_mult = {1, 2},
                           attention_resolutions = {2}, num_head_channels = 8, num_classes = 5, seed = 77}
  local path = dir .. "/adm.safetensors"

  it("converts a guided-diffusion checkpoint with realnet import and initialises by name and shape", function()
    local sd, names = src:state_dict()
    local entries = {}
    for _, n in ipairs(names) do entries[#entries + 1] = {"module." .. n, sd[n]:shape(), H.flat(sd[n])} end
    entries[#entries + 1] = {"fc.weight", {2, 3}, {1, 2, 3, 4, 5, 6}}
    safetensors(path, entries)
    local out, err, code = run("import " .. q(path) .. " --arch guided-diffusion --out " .. q(dir .. "/adm.h5"))
    assert.are.equal(0, code, err)
    assert.matches("width 8, 3 input channels, 6 output channels, 5 classes", out)
    -- train from both forms: the class embedding (5 vs 2 classes) is listed and re-initialised
    for _, init in ipairs{path, dir .. "/adm.h5"} do
      local ws = dir .. "/ws_" .. init:match("%.(%w+)$")
      out, err, code = run("sdas train --data " .. q(data) .. " --category all --steps 1 " .. TINY .. " --init " ..
        q(init) .. " --out " .. q(ws))
      assert.are.equal(0, code, err)
      assert.matches("re%-initialised label_emb%.weight: model %[2,32%], file %[5,32%]", out)
      assert.matches("1 re%-initialised %(shape differs%), 0 missing in the file", out)
      assert.matches("unused fc%.weight", out)
    end
    -- the values: every matching tensor copied, the mismatched one left as initialised
    local train = require "realnet.sdas.train"
    local cfg = train.defaults("cpu")
    cfg.model.model_channels, cfg.model.channel_mult, cfg.model.attention_resolutions = 8, {1, 2}, {2}
    cfg.model.num_head_channels = 8
    local net = train.build_unet(cfg, {"aa", "bb"})
    local before = net.label_emb.weight:clone()
    local report = rn.sdas.warmstart.apply(net, dir .. "/adm.h5")
    assert.are.equal(1, #report.mismatched)
    local mine = net:state_dict()
    for n, t in pairs(sd) do
      if n ~= "label_emb.weight" then assert.are.equal(0, H.maxdiff(mine[n], t), n) end
    end
    assert.are.equal(0, H.maxdiff(net.label_emb.weight, before))
  end)

  it("refuses files that are not diffusion U-Nets", function()
    local other = safetensors(dir .. "/other.safetensors", {{"conv1.weight", {2, 2}, {1, 2, 3, 4}}})
    local _, err, code = run("import " .. q(other) .. " --arch guided-diffusion --out " .. q(dir .. "/o.h5"))
    assert.are.equal(1, code)
    assert.matches("not a guided%-diffusion U%-Net", err)
    assert.is_nil(rn.file_type(dir .. "/o.h5"))
    _, err, code = run("sdas train --data " .. q(data) .. " --category aa --steps 1 " .. TINY .. " --init " ..
      q(other) .. " --out " .. q(dir .. "/ws_bad"))
    assert.are.equal(1, code)
    assert.matches("no tensor of .* matches the U%-Net", err)
    _, err, code = run("import " .. q(path) .. " --arch guided-difusion --out " .. q(dir .. "/o.h5"))
    assert.are.equal(2, code)
    assert.matches("did you mean guided%-diffusion", err)
  end)
end)
