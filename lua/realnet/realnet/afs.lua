--- realnet.realnet.afs: Anomaly-aware Feature Selection (spec 5) and its ablations.
--
--   local afs = AFS({256, 512, 1024}, {64, 128, 128}, {method = "afs", eps = 1e-4, seed = 0})
--   afs:select(extract, synth, ds, {batches = 64, batch = 16})    -- method "afs" only
--   local sel = afs(feats)                                         -- list of [B,k_l,h,w]
--
-- Methods: "afs" ranks each channel by its AFS loss over synthetic triplets (A, I, M) and keeps the k_l with
-- the smallest loss; "rdr" keeps k_l random channels (seeded); "rlpr" applies a fixed random linear projection
-- C_l -> k_l (seeded Gaussian / sqrt(C_l), a 1x1 convolution). A level whose k_l equals C_l keeps every channel
-- under all three methods. State (buffers): index<l> int64 [k_l] of 0-based channel ids in ascending order
-- (the file layout; C and other languages read it directly), proj<l> float32 [k_l,C_l,1,1] (rlpr), and
-- selected [1] (1 once the indices are final).
local core = require "realnet.core"
local nn = require "realnet.nn"

local M = {}

local AFS = nn.class("AFS", nn.Module)
M.AFS = AFS

--- AFS(channels, dims, opts{method, seed, eps}): channels = backbone channels per level, dims = kept channels.
function AFS:__init(channels, dims, opts)
  self.method, self.eps, self.seed = opts.method, opts.eps, opts.seed or 0
  self.channels, self.dims = channels, dims
  for l, c in ipairs(channels) do
    local k = dims[l]
    if k > c then
      error(("realnet: afs.dims[%d] = %d exceeds the %d channels of backbone level %d"):format(l, k, c, l), 0)
    end
    self:register_buffer("index" .. l, core.arange(0, k):long())
    if self.method == "rlpr" and k < c then
      local g = core.generator(self.seed, 1000 + l)
      self:register_buffer("proj" .. l, g:randn({k, c, 1, 1}) * (1 / math.sqrt(c)))
    end
  end
  self:register_buffer("selected", core.zeros({1}))
  if self.method == "rdr" then self:_random_indices() end
  if self.method ~= "afs" then self.selected:fill_(1) end
end

--- Whether level l keeps a subset (k_l < C_l).
function AFS:reduces(l) return self.dims[l] < self.channels[l] end

function AFS:is_selected() return self.selected:item() == 1 end

-- Ascending 0-based ids -> the index buffer of level l.
function AFS:_set(l, ids)
  table.sort(ids)
  self["index" .. l]:copy_(core.tensor(ids, {dtype = "int64"}))
end

--- RDR: k_l distinct random channels per level (partial Fisher-Yates from generator (seed, level)).
function AFS:_random_indices()
  for l, c in ipairs(self.channels) do
    if self:reduces(l) then
      local g = core.generator(self.seed, l)
      local perm = {}
      for i = 1, c do perm[i] = i - 1 end
      for i = 1, self.dims[l] do
        local j = g:int(i, c)
        perm[i], perm[j] = perm[j], perm[i]
      end
      self:_set(l, table.move(perm, 1, self.dims[l], 1, {}))
    end
  end
end

--- Per-channel AFS loss of one level over one batch (spec 5.2): D = (Fa - Fn)^2 min-max normalised per channel
-- over the whole batch (eps in the denominator), against the mask resized by nearest neighbour; mean over
-- B*h*w. Returns float32 [C].
function M.channel_loss(fa, fn, mask, eps)
  local d = (fa - fn):square()
  local lo, hi = d:min({1, 3, 4}, true), d:max({1, 3, 4}, true)
  local dn = (d - lo) / (hi - lo + eps)
  local s = d:shape()
  local m = core.upsample(mask, {size = {s[3], s[4]}, mode = "nearest"})
  return (dn - m):square():mean({1, 3, 4})
end

--- The k smallest entries of acc (a Lua list; NaNs count as the largest finite value), ascending 0-based ids.
function M.smallest(acc, k)
  local maxf = -math.huge
  for _, v in ipairs(acc) do if v == v and v > maxf then maxf = v end end
  local order = {}
  for i, v in ipairs(acc) do order[i] = {v == v and v or maxf, i - 1} end
  table.sort(order, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
  local ids = {}
  for i = 1, k do ids[i] = order[i][2] end
  table.sort(ids)
  return ids
end

--- AFS selection. extract(x) -> list of backbone features per level (called without grad); synth:batch(ds, n)
-- -> A, I, M. opts: batches, batch, progress(i, batches). The same batches serve every level (the authors
-- draw fresh batches per block; the expectation is the same and this runs the backbone once per batch).
-- Returns the per-level loss lists.
function AFS:select(extract, synth, ds, opts)
  if self.method ~= "afs" then
    error(("realnet: select_features is for afs.method = 'afs' (this model uses '%s', fixed at creation)"):format(
      self.method), 3)
  end
  local acc, any = {}, false
  for l = 1, #self.channels do
    if self:reduces(l) then acc[l] = core.zeros({self.channels[l]}); any = true end
  end
  if any then
    for it = 1, opts.batches do
      local A, I, Mk = synth:batch(ds, opts.batch)
      core.no_grad(function()
        local fa, fn = extract(A), extract(I)
        for l in pairs(acc) do
          acc[l] = acc[l] + M.channel_loss(fa[l], fn[l], Mk, self.eps)
        end
      end)
      if opts.progress then opts.progress(it, opts.batches) end
    end
  end
  local losses = {}
  for l = 1, #self.channels do
    if acc[l] then
      losses[l] = acc[l]:totable()
      self:_set(l, M.smallest(losses[l], self.dims[l]))
    end
  end
  self.selected:fill_(1)
  return losses
end

--- feats (list of [B,C_l,h,w]) -> list of [B,k_l,h,w]. With self.frozen (see freeze) the selections come from
-- those validated channel indices, which need no check (and no wait for the device) per call.
function AFS:forward(feats)
  local out = {}
  for l, f in ipairs(feats) do
    if not self:reduces(l) then
      out[l] = f
    elseif self.method == "rlpr" then
      out[l] = core.conv2d(f, self["proj" .. l])
    elseif self.frozen then
      out[l] = core.select_channels(f, self.frozen[l])
    else
      out[l] = core.index_select(f, 2, self["index" .. l] + 1)
    end
  end
  return out
end

--- The current selections as validated channel indices on the buffers' device ({[l] = core.channel_index});
-- assign them to self.frozen to use them in forward (a CUDA graph capture does: it cannot record the checks),
-- and clear self.frozen again: they do not follow later changes of the index buffers.
function AFS:freeze()
  local idx = {}
  for l, c in ipairs(self.channels) do
    if self:reduces(l) and self.method ~= "rlpr" then idx[l] = core.channel_index(self["index" .. l] + 1, c) end
  end
  return idx
end

function AFS:extra_repr()
  return ("%s, dims {%s} of {%s}"):format(self.method, table.concat(self.dims, ","), table.concat(self.channels, ","))
end

return M
