#!/bin/sh
# The C API end to end (CTest capi/predict_example): makes a tiny demo dataset, trains a tiny RealNet for one
# epoch with the realnet binary, then runs the example program and test_capi on it.
#   run_example.sh REALNET_BIN EXAMPLE_BIN WORKDIR TEST_CAPI_BIN
set -eu
realnet=$1; example=$2; work=$3; test_capi=$4
rm -rf "$work"; mkdir -p "$work"
cd "$work"
printf '%s\n' 'local rn = require "realnet"' \
  'rn.demo_data.make("demo", {seed = 1, size = 64, train = 8, test_good = 2, test_defect = 1})' > make.lua
"$realnet" run make.lua
"$realnet" train --data demo --category demo_surface --out run --epochs 1 --batch 4 --image-size 64 \
  --backbone resnet18 --model.backbone.layers=1,2,3 --afs 16,32,32 --model.afs.batches=1 --model.afs.batch=4 \
  --model.disc.hidden=16 --model.disc.mid=8,8 --model.recon.channel_mult=1 --model.recon.attention=1 > train.log
img=demo/demo_surface/test/crack/000.png
"$example" run "$img" > out.txt
cat out.txt
grep -q "^# realnet model, input 64x64" out.txt
grep -q "^$img [0-9.]* [01] map 64x64 max" out.txt
# the same score as `realnet predict`
score_c=$(grep "^$img" out.txt | cut -d' ' -f2)
score_lua=$("$realnet" predict run "$img" | sed 's/.*"score":\([0-9.e-]*\).*/\1/')
awk -v a="$score_c" -v b="$score_lua" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-5) }'
# a missing image: a message naming it, exit 1
if "$example" run missing.png 2> err.txt; then echo "expected a failure"; exit 1; fi
grep -q "missing.png" err.txt
# not a model: a clear error
if "$example" make.lua "$img" 2> err2.txt; then echo "expected a failure"; exit 1; fi
grep -q "not a model" err2.txt
# the whole API (bad arguments, in-memory pixels) through tests/capi/test_capi.c
"$test_capi" run "$img"
echo "capi example: ok"
