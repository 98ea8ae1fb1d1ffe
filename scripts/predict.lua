-- Score images with a trained model: one JSON line per image {path, score, label, map}.
--
--   realnet predict RUNDIR|MODEL.h5 IMAGE|DIR... [--maps DIR] [--overlays DIR] [--threshold X]
--
-- The model is loaded once. label is score >= the threshold stored in the model (a quantile of held-out normal
-- training images' scores; --threshold overrides it). --maps writes float32 TIFF maps at each image's size
-- (DIR/<name>.tiff, "map" in the JSON line); --overlays writes PNG overlays. No test labels are needed.
-- Unreadable images are reported on stderr and as {path, error} lines; the exit status is then 1.
-- On a GPU, --tf32 uses TF32 tensor cores for float32 convolutions and products, and --cuda-graph records
-- the network once (per batch size) as a CUDA graph and replays it: a RealNet forward is hundreds of small
-- kernels, so one image at a time runs about twice as fast (81 vs 38 images/s on an H200 with TF32); --lanes N
-- runs the blocks' reconstruction U-Nets side by side on N streams (REALNET_CUDA_LANES; not yet measured);
-- --bf16 rounds the inputs of convolutions and products to bfloat16 (REALNET_BF16; not yet measured).
local rn = require "realnet"
local cli = require "realnet.cli"
local json = require "realnet.json"
local predictor = require "realnet.predictor"

local SPEC = {
  name = "predict",
  summary = "anomaly scores (and maps) of images, one JSON line each",
  positional = {{"model", metavar = "RUNDIR", required = true, missing = "no run directory or model file given"},
                {"inputs", metavar = "IMAGE|DIR", variadic = true, required = true,
                 missing = "no images given (image files or directories)"}},
  usage = "RUNDIR IMAGE|DIR... [--maps DIR] [--overlays DIR] [--threshold X]",
  options = {
    {"--maps", type = "path", metavar = "DIR", help = "write float32 TIFF maps here"},
    {"--overlays", type = "path", metavar = "DIR", help = "write PNG overlays here"},
    {"--threshold", type = "number", help = "image threshold (default: the model's)"},
    {"--device", metavar = "cpu|cuda[:N]", help = "where the network runs (cpu)"},
    {"--tf32", type = "flag", help = "TF32 tensor cores for float32 convolutions and products (GPU; ~1e-3 relative error)"},
    {"--bf16", type = "flag", help = "bfloat16 autocast of convolutions and products (GPU; ~4e-3 relative error)"},
    {"--cuda-graph", type = "flag", help = "record the RealNet forward once as a CUDA graph and replay it (GPU)"},
    {"--lanes", type = "int", metavar = "N", help = "run the U-Nets side by side on N streams, 1 .. 8 (GPU; default 1)"},
  },
  epilog = "exit status: 0 all scored, 1 some image or the model failed, 2 usage error",
}

local o = cli.parse(arg, SPEC)
local ok, pred = pcall(predictor.open, o.model, {device = o.device, tf32 = o.tf32, bf16 = o.bf16,
                                                 graph = o.cuda_graph,
                                                 lanes = o.lanes})
if not ok then
  io.stderr:write("realnet predict: ", tostring(pred), "\n")
  os.exit(1)
end
if o.threshold then pred.threshold = o.threshold end
local files = {}
for _, p in ipairs(o.inputs) do
  local t = rn.file_type(p)
  if t == "directory" then
    for _, f in ipairs(predictor.list_images(p)) do files[#files + 1] = f end
  else
    files[#files + 1] = p
  end
end
for _, d in ipairs{o.maps, o.overlays} do rn.rundir.mkdir(d) end

local used, failed = {}, 0
local function unique(dir, path, ext) -- DIR/<name>.<ext>, numbered when two inputs share a name
  local base = (path:match("([^/]+)$") or path):gsub("%.[^.]*$", "")
  local name, k = base, 1
  while used[dir .. name .. ext] do k = k + 1; name = base .. "_" .. k end
  used[dir .. name .. ext] = true
  return dir .. "/" .. name .. ext
end

for _, path in ipairs(files) do
  local okp, r = pcall(pred.predict_file, pred, path, {map = o.maps ~= nil})
  if okp then
    local line = {path = path, score = r.score, label = r.label}
    if o.maps then
      line.map = unique(o.maps, path, ".tiff")
      rn.image.write_tiff(line.map, r.map)
    end
    if o.overlays then
      local hi = pred.method == "realnet" and 1 or math.max(r.small_map:max():item(), pred.threshold or 0)
      rn.image.overlay{image = r.rgb, heat = r.small_map, lo = 0, hi = hi, threshold = pred.threshold,
                       path = unique(o.overlays, path, ".png")}
    end
    io.stdout:write(json.encode(line, {order = {"path", "score", "label", "map"}}), "\n")
  else
    failed = failed + 1
    io.stderr:write("realnet predict: ", tostring(r), "\n")
    io.stdout:write(json.encode({path = path, error = tostring(r)}, {order = {"path", "error"}}), "\n")
  end
  io.stdout:flush()
end
if failed > 0 then os.exit(1) end
