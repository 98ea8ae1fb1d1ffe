-- Train a small convnet on a generated two-class image task and report its accuracy.
--
--   realnet demo [--steps N] [--n N] [--seed N] [--lr X]
-- The network is conv-bn-relu-pool-linear, trained with Adam on images holding a horizontal bar (class 1) or a
-- vertical bar (class 2) plus noise.
local rn = require "realnet"
local nn = rn.nn

local opts = { steps = 60, n = 128, seed = 1, lr = 0.01 }
local i = 1
while i <= #arg do
  local key = arg[i]:match("^%-%-(%w+)$")
  if not key or opts[key] == nil or not tonumber(arg[i + 1]) then
    io.stderr:write("demo: unknown or incomplete option '" .. arg[i] .. "'\n",
      "usage: realnet demo [--steps N] [--n N] [--seed N] [--lr X]\n")
    os.exit(2)
  end
  opts[key] = math.tointeger(tonumber(arg[i + 1])) or tonumber(arg[i + 1])
  i = i + 2
end

local size = 12
local x, y = rn.toy.two_class_images(opts.n, { size = size, seed = opts.seed })
local g = rn.generator(opts.seed, 1)
local net = nn.Sequential(
  nn.Conv2d(1, 8, 3, { padding = 1, generator = g }),
  nn.BatchNorm2d(8),
  nn.ReLU(),
  nn.MaxPool2d(2),
  nn.Flatten(),
  nn.Linear(8 * (size // 2) * (size // 2), 2, { generator = g }))
print(net)
print(("%d parameters, %d images of %dx%d, %d threads"):format(net:num_parameters(), opts.n, size, size,
  rn.get_num_threads()))

local function accuracy(logits)
  return logits:argmax(2):eq(y):float():mean():item()
end

local opt = rn.optim.adam(net, { lr = opts.lr })
local t0 = rn.now()
for step = 1, opts.steps do
  local logits = net(x)
  local loss = rn.cross_entropy(logits, y)
  opt:zero_grad()
  loss:backward()
  opt:step()
  if step == 1 or step % 10 == 0 or step == opts.steps then
    print(("step %3d/%d  loss %.4f  train accuracy %.3f  %.1f img/s"):format(step, opts.steps, loss:item(),
      accuracy(logits), step * opts.n / math.max(rn.now() - t0, 1e-9)))
  end
end

net:eval()
local final = rn.no_grad(function() return accuracy(net(x)) end)
print(("final training accuracy %.3f (eval mode)"):format(final))
