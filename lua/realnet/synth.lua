--- realnet.synth: synthetic anomalies for RealNet training (spec 3): Perlin x foreground masks and four
-- anomaly sources, blended per eq. (3) with opacity delta ~ U[lo, hi].
--
--   local rn = require "realnet"
--   local ds = rn.data.mvtec(root, "bottle", {split = "train", size = 256})
--   local synth = rn.synth.new{source = "dtd", dir = dtd_dir, category = "bottle", seed = 7}
--   local A, I, M = synth:batch(ds, 16)    -- [16,3,H,W] anomalous, [16,3,H,W] normal, [16,1,H,W] mask
--
-- Options of new{...}:
--   source      "dtd" (textures, glob dir/*/* or dir/*, 3 of 10 augmenters), "sia" / "sdas" (generated images
--               of the same class: dir/<category>/* when that exists, else dir/*), "cutpaste" (a patch of the
--               same image), "nsa" (a patch of another normal image of the dataset, Poisson-blended)
--   dir         source images (dtd, sia); files = {...} gives the list instead
--   category    selects the foreground rule from rn.synth.foreground.table (else the dataset's category)
--   dataset     "mvtec", "visa", "mpdd" or "btad" to disambiguate the table (optional)
--   foreground  a rule ("otsu_dark_c6_o6", a table, or false / "none"); overrides the category's rule
--   foreground_table  a recipe's own table (category -> rule, or dataset -> category -> rule), looked up first
--   seed        0; the same seed gives the same anomalies on any thread count
--   opacity     {lo, hi}; defaults: dtd {0.2, 1}, sia {0.5, 1}, cutpaste and nsa {1, 1}
--   retries     16: redraws of an empty mask before the foreground restriction is dropped for that sample
--   augmenters  3 (dtd); perlin = {min_scale = 0, max_scale = 6, threshold = 0.5, rotation = {-90, 90}}
--   area        {0.02, 0.15} patch area fraction, aspect 0.3 (cutpaste, nsa); poisson_iters, poisson_tol (nsa)
--   quiet       true: no warning for an unknown category
--   sampler     (sia) an rn.sdas sampler used instead of dir: a pool of `pool` (64) images is drawn from it at
--               first use, in batches of pool_batch (8), written as PNGs to pool_dir (default: a fresh temporary
--               folder, removed by :free()) and read by the SIA source like a folder; every `refresh` samples
--               (0 = never, the default) a new pool is drawn. sample_size (default: the sampler's model
--               image_size, set by rn.sdas.load_run) and sample_opts ({y = class id} for class-conditional models)
-- An unknown category is not an error: it gets no foreground restriction and one warning on stderr.
local core = require "realnet.core"
local fg = require "realnet.foreground"

local sc = core.synth_core
local M = {foreground = fg}

local Synth = {}
Synth.__index = Synth

local IMAGE_EXT = {png = true, jpg = true, jpeg = true, bmp = true}

local function is_image(name)
  local ext = name:match("%.([%w]+)$")
  return ext ~= nil and IMAGE_EXT[ext:lower()] == true
end

local function is_dir(path) return core.file_type(path) == "directory" end

--- Image files directly in dir (sorted), and those one level down (dir/*/*) when `nested`.
local function list_images(dir, nested)
  local names, err = core.listdir(dir)
  if not names then error("synth: " .. err, 3) end
  local files = {}
  for _, name in ipairs(names) do
    local path = dir .. "/" .. name
    if is_image(name) and core.file_type(path) == "file" then
      files[#files + 1] = path
    elseif nested and is_dir(path) then
      for _, sub in ipairs(core.listdir(path) or {}) do
        if is_image(sub) then files[#files + 1] = path .. "/" .. sub end
      end
    end
  end
  return files
end

-- A pool of images drawn from o.sampler, written as PNGs into dir (pool k); returns the file list.
local function sampler_pool(o, dir, k)
  local sampler = o.sampler
  local size = o.sample_size
  if size == nil then
    local model = type(sampler.model) == "function" and sampler:model() or nil
    size = type(model) == "table" and model.image_size or nil
  end
  if type(size) == "number" then size = {size, size} end
  if type(size) ~= "table" or math.type(size[1]) ~= "integer" or math.type(size[2]) ~= "integer" then
    error("synth: a sampler source needs sample_size (the diffusion model's image size)", 4)
  end
  local n, per = o.pool or 64, o.pool_batch or 8
  if math.type(n) ~= "integer" or n < 1 then error("synth: pool must be a positive integer", 4) end
  local files = {}
  while #files < n do
    local b = math.min(per, n - #files)
    local x = core.no_grad(function() return sampler:sample(b, {3, size[1], size[2]}, o.sample_opts) end)
    local u8 = sc.from_chw((x + 1) * 0.5, "unit")
    for i = 1, b do
      local path = ("%s/pool%04d_%06d.png"):format(dir, k, #files)
      core.image.write_png(path, u8:narrow(1, i, 1):reshape({size[1], size[2], 3}))
      files[#files + 1] = path
    end
  end
  return files
end

local function source_files(o)
  if o.files then return o.files end
  if o.source ~= "dtd" and o.source ~= "sia" and o.source ~= "sdas" then return {} end
  if not o.dir then error(("synth: source '%s' needs dir = <folder of images>"):format(o.source), 3) end
  local dir = o.dir
  if o.source ~= "dtd" and o.category and is_dir(dir .. "/" .. o.category) then dir = dir .. "/" .. o.category end
  local files = list_images(dir, o.source == "dtd")
  if #files == 0 then error(("synth: no images (png, jpg, bmp) in %s"):format(dir), 3) end
  return files
end

local function warn(msg) io.stderr:write("realnet: warning: ", msg, "\n") end

--- A synthesiser (see the options above). The C side is built on first use when the category comes from
-- the dataset.
function M.new(opts)
  if type(opts) ~= "table" then error("rn.synth.new expects an options table", 2) end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.source = o.source or "dtd"
  local valid = {dtd = true, sia = true, sdas = true, cutpaste = true, nsa = true}
  if not valid[o.source] then
    error(("synth: unknown source '%s' (dtd, sia, sdas, cutpaste or nsa)"):format(tostring(o.source)), 2)
  end
  local op = o.opacity
  if op ~= nil and (type(op) ~= "table" or #op ~= 2 or type(op[1]) ~= "number" or type(op[2]) ~= "number"
      or not (0 <= op[1] and op[1] <= op[2] and op[2] <= 1)) then
    error("synth: opacity must be a pair {lo, hi} with 0 <= lo <= hi <= 1", 2)
  end
  local self = setmetatable({opts = o, count = 0, fallbacks = 0}, Synth)
  if o.sampler ~= nil then
    if o.source ~= "sia" and o.source ~= "sdas" then error("synth: sampler = ... is a source of SIA images: use source = \"sia\"", 2) end
    if o.dir then error("synth: give either dir or sampler for the SIA source, not both", 2) end
    self:_new_pool()
  else
    self.files = source_files(o)
  end
  if o.foreground ~= nil then self.rule = fg.normalize(o.foreground) end
  self.picker = core.generator(o.seed or 0, 1 << 40) -- item choices; samples use streams 0, 1, 2, ...
  self.partners = o.source == "nsa" -- apply needs the partner images NSA takes its patch from
  if self.rule or o.category then self:_build(o.category) end
  return self
end

-- Draws a (new) pool of sampler images and points the source at it; the C side is rebuilt on next use.
function Synth:_new_pool()
  local o = self.opts
  if not self.pool_dir then
    self.pool_dir = o.pool_dir
    if not self.pool_dir then
      local tmp = os.tmpname() -- a unique name; the folder takes its place
      os.remove(tmp)
      self.pool_dir, self.pool_owned = tmp .. ".sia", true
    end
    if not core.file_type(self.pool_dir) and not core.mkdir(self.pool_dir) then
      error("synth: cannot create the pool folder " .. self.pool_dir, 3)
    end
  end
  self.pool_k = (self.pool_k or 0) + 1
  local old = self.files
  self.files = sampler_pool(o, self.pool_dir, self.pool_k)
  self.pool_at = self.count
  for _, f in ipairs(old or {}) do os.remove(f) end
  if self.c then self.c:free(); self.c = nil end
end

--- The foreground rule in use (a table), resolving the category on first use.
function Synth:_build(category)
  if self.c then return end
  local o = self.opts
  category = o.category or category
  if not self.rule then
    local r, msg = nil, nil
    if category then r, msg = fg.lookup(category, o.dataset, o.foreground_table)
    else msg = "no category given; synthetic anomalies are not restricted to a foreground" end
    if not r then
      if not o.quiet then warn(msg) end
      r = fg.normalize(false)
    end
    self.rule = r
  end
  local copts = {}
  for _, k in ipairs{"seed", "opacity", "area", "aspect", "retries", "augmenters", "poisson_iters", "poisson_tol", "perlin"} do
    copts[k] = o[k]
  end
  copts.source = o.source
  copts.foreground = fg.to_core(self.rule)
  self.c = sc.new(copts, self.files)
end

local function dataset_norm(ds)
  local info = type(ds.info) == "function" and ds:info() or nil
  if info and info.normalize == false then return "unit" end
  return "imagenet"
end

--- n samples from a dataset (#ds, ds:get(i) -> {image = ...}): A, I (float32 [n,3,H,W], normalised like the
-- dataset's images unless opts.output = "unit" | "imagenet" | "uint8") and M (float32 [n,1,H,W] of 0/1; with
-- output "uint8": A, I uint8 [n,H,W,3], M uint8 [n,H,W]). opts.indices (1-based) picks the items; otherwise
-- they are drawn uniformly from the synthesiser's seed. Item images are float32 [3,H,W] (opts.input =
-- "imagenet" | "unit", default from ds:info().normalize) or uint8 [H,W,3].
function Synth:batch(ds, n, opts) return M._batch_of(self, ds, n, opts, 2) end

-- Synth:batch for any synthesiser s (a Synth or a Mix): s.picker draws the items, s:_build(category) readies
-- it for the dataset's category, s.partners says whether apply needs NSA partner images. Internal.
function M._batch_of(s, ds, n, opts, level)
  opts = opts or {}
  local size = #ds
  if size < 1 then error("synth: the dataset is empty", level + 1) end
  n = n or 1
  if math.type(n) ~= "integer" or n < 1 then error("synth: batch size must be a positive integer", level + 1) end
  local info = type(ds.info) == "function" and ds:info() or {}
  s:_build(info.category)
  local idx = opts.indices
  if idx then
    if #idx ~= n then error(("synth: %d indices for a batch of %d"):format(#idx, n), level + 1) end
  else
    idx = {}
    for i = 1, n do idx[i] = s.picker:int(1, size) end
  end
  local input = opts.input or dataset_norm(ds)
  local imgs = {}
  for i = 1, n do imgs[i] = ds:get(idx[i]).image end
  local others = nil
  if s.partners then
    local list = {}
    for i = 1, n do
      local j = idx[i]
      if size > 1 then
        j = s.picker:int(1, size - 1)
        if j >= idx[i] then j = j + 1 end -- another image than the one being changed
      end
      list[i] = ds:get(j).image
    end
    others = sc.stack(list, input)
  end
  local I8 = sc.stack(imgs, input)
  local A, M = s:apply(I8, others)
  local out = opts.output or (input == "unit" and "unit" or "imagenet")
  if out == "uint8" then return A, I8, M end
  return sc.to_chw(A, out), sc.to_chw(I8, out), sc.to_chw(M, "raw")
end

--- The sources on uint8 tensors: images [N,H,W,3] (and NSA partners) -> A uint8 [N,H,W,3], M uint8 [N,H,W].
-- Samples are numbered on from the synthesiser's counter, so consecutive calls give new anomalies.
function Synth:apply(images, others)
  local refresh = self.opts.refresh or 0
  if self.opts.sampler and refresh > 0 and self.count - self.pool_at >= refresh then
    self:_new_pool()
  end
  self:_build()
  local A, M, fb = self.c:apply(images, others, self.count)
  self.count = self.count + images:size(1)
  self.fallbacks = self.fallbacks + fb
  return A, M
end

--- Samples drawn so far and how many of them fell back to no foreground restriction.
function Synth:stats() return {samples = self.count, fallbacks = self.fallbacks} end

--- The resolved settings: source, files, foreground rule (as text), seed.
function Synth:describe()
  return {source = self.opts.source, files = #self.files, foreground = self.rule and fg.describe(self.rule) or "(from the dataset)",
          seed = self.opts.seed or 0, opacity = self.opts.opacity}
end

function Synth:free()
  if self.c then self.c:free() end
  self.c = nil
  if self.pool_owned and self.pool_dir then -- the temporary pool of a sampler source
    for _, f in ipairs(self.files or {}) do os.remove(f) end
    os.remove(self.pool_dir)
    self.pool_dir, self.pool_owned = nil, nil
  end
end
Synth.__close = Synth.free
Synth.__name = "realnet.synth"
function Synth.__tostring(s) return s.c and tostring(s.c) or ("synth(%s)"):format(s.opts.source) end

--- Perlin mask uint8 [h,w] (0/1) and {rx, ry, degrees}; opts: seed, stream, generator, and the perlin fields.
function M.perlin_mask(h, w, opts) return sc.perlin_mask(h, w, opts) end

--- Foreground mask uint8 [H,W] of an RGB uint8 [H,W,3] image under a rule (string or table).
function M.foreground_mask(image, rule) return sc.foreground_mask(image, fg.to_core(rule)) end

--- A preview grid uint8 [.., .., 3] with rows A | M | I, from synth:batch outputs (float32 in the `norm`
-- normalisation, "imagenet" by default, or uint8).
function M.grid(A, Mk, I, norm, gap)
  norm = norm or "imagenet"
  local function u8(x) return x:dtype() == "uint8" and x or sc.from_chw(x, norm) end
  return sc.grid(u8(A), sc.mask_u8(Mk), u8(I), gap)
end

--- Writes the preview grid as a PNG (atomic).
function M.write_grid(path, A, Mk, I, norm, gap)
  local g = M.grid(A, Mk, I, norm, gap)
  core.image.write_png(path, g)
  return g
end

-- ------------------------------------------------------------------ mixtures

-- A mixture of synthesisers (spec 3: each synthetic sample draws its anomaly type). It answers like one
-- synthesiser: apply, count, stats, describe, free.
local Mix = {}
Mix.__index = Mix

-- The stream of the per-sample source choices, apart from the sources' own streams 0, 1, 2, ...
local MIX_STREAM = 1 << 41

--- A mixture of synthesisers: each sample, numbered on from the mixture's counter, takes its anomaly from one
-- part chosen uniformly from (seed, sample number) alone, and that part draws it as its own sample of the same
-- number, so the anomalies depend on neither batch boundaries nor thread count, and a resumed run (count
-- restored) continues exactly.
--   local mix = rn.synth.mix({rn.synth.new{source = "dtd", dir = d}, rn.synth.new{source = "nsa"}}, {seed = 7})
function M.mix(parts, opts)
  if type(parts) ~= "table" or #parts < 1 then error("synth.mix expects a list of synthesisers", 2) end
  for i, p in ipairs(parts) do
    if getmetatable(p) ~= Synth then error(("synth.mix: part %d is not a synthesiser"):format(i), 2) end
  end
  opts = opts or {}
  local self = setmetatable({parts = parts, count = 0, seed = opts.seed or 0}, Mix)
  self.picker = core.generator(self.seed, 1 << 40) -- item choices of batch, as a synthesiser's
  self.partners = false -- NSA parts blend in a patch of another image: apply then needs `others`
  for _, p in ipairs(parts) do self.partners = self.partners or p.partners end
  return self
end

--- As Synth:batch: n triplets from a dataset, each sample from one part.
function Mix:batch(ds, n, opts) return M._batch_of(self, ds, n, opts, 2) end

-- Readies every part for the dataset's category (parts given their own category keep it).
function Mix:_build(category) for _, p in ipairs(self.parts) do p:_build(category) end end

--- The part (1-based) that sample number k takes its anomaly from.
function Mix:part_of(k)
  return core.generator(self.seed, MIX_STREAM + k):int(1, #self.parts)
end

--- As Synth:apply: images uint8 [N,H,W,3] (and NSA partners, needed when any part is NSA) -> A, M.
function Mix:apply(images, others)
  local n = images:size(1)
  if self.partners and not others then error("synth.mix: an NSA part needs the partner images", 2) end
  local A, Mk = {}, {}
  for i = 1, n do
    local k = self.count + i - 1
    local part = self.parts[self:part_of(k)]
    part.count = k
    local a, m = part:apply(images:narrow(1, i, 1), others and others:narrow(1, i, 1) or nil)
    A[i], Mk[i] = a, m
  end
  self.count = self.count + n
  return core.cat(A, 1), core.cat(Mk, 1)
end

--- Samples drawn so far and how many fell back to no foreground restriction (over all parts).
function Mix:stats()
  local fb = 0
  for _, p in ipairs(self.parts) do fb = fb + p.fallbacks end
  return {samples = self.count, fallbacks = fb}
end

--- The parts' settings (a list of Synth:describe tables) and the mixture's seed.
function Mix:describe()
  local parts, names = {}, {}
  for i, p in ipairs(self.parts) do parts[i] = p:describe(); names[i] = p.opts.source end
  return {source = table.concat(names, ","), parts = parts, seed = self.seed}
end

function Mix:free() for _, p in ipairs(self.parts) do p:free() end end
Mix.__close = Mix.free
Mix.__name = "realnet.synth.mix"
function Mix.__tostring(m)
  local t = {}
  for i, p in ipairs(m.parts) do t[i] = tostring(p) end
  return "mix(" .. table.concat(t, ", ") .. ")"
end

M.core = sc
M.Synth = Synth
M.Mix = Mix
return M
