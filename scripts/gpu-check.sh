#!/usr/bin/env bash
# gpu-check.sh - validates a GPU machine in one go: configures and builds realnet with the CUDA backend, runs the
# CPU-vs-CUDA agreement tests (ctest -L cuda: every op, RealNet and SDAS, the commands with --device cuda), then
# the GPU benchmarks (RealNet inference with the paper's model: WideResNet-50-2 layers 1-4, AFS dims
# 256/512/512/256, 256x256, run op by op and as a CUDA graph, on one stream and with the U-Nets on 4 lanes; and
# the backbone alone), at batch 32 and batch 1, float32, TF32 and the bfloat16 autocast, and prints a summary.
# Finishes within about 8 minutes (--budget: benchmark runs past it are listed as skipped, the target runs come
# first); exits 0 when the build and every agreement test pass (the benchmark figures are reported against the
# targets of issue 8 but do not change the exit status).
# --no-build uses a build made elsewhere (same source tree path, or one reached through a link).
set -u

usage() {
  cat <<'EOF'
usage: scripts/gpu-check.sh [--build DIR] [--arch LIST] [--jobs N] [--seconds S] [--budget S] [--no-bench] [--no-build]
  --build DIR    build directory (default build-gpu)
  --no-build     use DIR as it is (built elsewhere with CUDA on); skip configure and build
  --arch LIST    CMAKE_CUDA_ARCHITECTURES (default: native when a GPU is visible, else 80;86;90)
  --jobs N       parallel build jobs (default: number of cores)
  --seconds S    timed seconds per benchmark run after warm-up (default 5)
  --budget S     seconds from the start after which benchmark runs are skipped (default 480: the whole check,
                 summary included, ends within about 8 minutes; the targets' runs come first)
  --no-bench     build and test only
EOF
}

BUILD=build-gpu
ARCH=""
JOBS=$(nproc 2>/dev/null || echo 4)
SECONDS_PER_RUN=5
BUDGET=480
BENCH=1
BUILD_IT=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=${2:?--build needs a directory}; shift ;;
    --arch) ARCH=${2:?--arch needs a list}; shift ;;
    --jobs) JOBS=${2:?--jobs needs a number}; shift ;;
    --seconds) SECONDS_PER_RUN=${2:?--seconds needs a number}; shift ;;
    --budget) BUDGET=${2:?--budget needs a number of seconds}; shift ;;
    --no-bench) BENCH=0 ;;
    --no-build) BUILD_IT=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/.." || exit 1
LOG_DIR="$BUILD/gpu-check"
mkdir -p "$LOG_DIR" || exit 1
t_start=$(date +%s)
step() { printf '\n== %s (%ds elapsed)\n' "$1" $(( $(date +%s) - t_start )); }

step "GPU"
GPU_NAME="none visible"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >"$LOG_DIR/gpus.txt" 2>&1; then
  cat "$LOG_DIR/gpus.txt"
  GPU_NAME=$(head -1 "$LOG_DIR/gpus.txt")
  [ -n "$ARCH" ] || ARCH=native
else
  echo "nvidia-smi finds no GPU; the agreement tests will report skipped and the check fails"
  [ -n "$ARCH" ] || ARCH="80;86;90"
fi

t_build=$(date +%s)
if [ "$BUILD_IT" -eq 1 ]; then
  step "configure + build (CUDA on, architectures $ARCH, $JOBS jobs)"
  if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DREALNET_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$ARCH" \
       >"$LOG_DIR/configure.log" 2>&1; then
    tail -30 "$LOG_DIR/configure.log"
    echo "gpu-check: configure failed (log: $LOG_DIR/configure.log)" >&2
    exit 1
  fi
  targets=(realnet realnet_core bench_cuda_backbone)
  for f in tests/cuda/test_cuda_*.c; do targets+=("$(basename "$f" .c)"); done
  if ! timeout 420 cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}" >"$LOG_DIR/build.log" 2>&1; then
    grep -E "error|Error" "$LOG_DIR/build.log" | head -30
    echo "gpu-check: build failed (log: $LOG_DIR/build.log)" >&2
    exit 1
  fi
  build_s=$(( $(date +%s) - t_build ))
  echo "built in ${build_s}s"
  build_note="${build_s}s (architectures $ARCH)"
else
  step "using the existing build in $BUILD"
  for f in "$BUILD/bin/realnet" "$BUILD/bin/bench_cuda_backbone" "$BUILD/CTestTestfile.cmake"; do
    [ -e "$f" ] || { echo "gpu-check: --no-build but $f is missing" >&2; exit 1; }
  done
  build_note="not built here (--no-build: $BUILD)"
fi

step "CPU-vs-CUDA agreement tests (ctest -L cuda)"
(cd "$BUILD" && timeout 300 ctest -L cuda --output-on-failure) >"$LOG_DIR/ctest.log" 2>&1
ctest_rc=$?
grep -E "Test +#|tests passed|Skipped|Failed" "$LOG_DIR/ctest.log"
summary_line=$(grep -E "tests passed" "$LOG_DIR/ctest.log" | tail -1)
n_skipped=$(grep -c "(Skipped)" "$LOG_DIR/ctest.log")
tests_ok=1
if [ "$ctest_rc" -ne 0 ]; then tests_ok=0; fi
if [ -z "$summary_line" ]; then tests_ok=0; echo "gpu-check: ctest ran no tests (log: $LOG_DIR/ctest.log)"; fi
if [ "$n_skipped" -gt 0 ]; then tests_ok=0; echo "gpu-check: $n_skipped agreement tests were skipped (no usable GPU)"; fi

bench_lines=()
# one benchmark run -> its "result:" line, or a FAILED line naming the exit status and the first output line; once
# the time budget is spent the remaining runs are listed as skipped, so the summary still comes in time
bench_run() { # label, command...
  local label=$1 out rc line left
  shift
  left=$(( BUDGET - ($(date +%s) - t_start) ))
  if [ "$left" -lt 20 ]; then
    line="result: $label skipped (the ${BUDGET}s budget is spent; --budget S to allow more)"
  else
    out=$(timeout $(( left < 240 ? left : 240 )) "$@" 2>&1)
    rc=$?
    printf '%s\n' "$out" >>"$LOG_DIR/bench.log"
    line=$(printf '%s\n' "$out" | grep -E '^(result|realnet inference):' | tail -1)
    [ -n "$line" ] || line="result: $label FAILED (exit $rc): $(printf '%s\n' "$out" | head -1)"
  fi
  echo "$line"
  bench_lines+=("$line")
}
realnet_bench() { # label, bench realnet options...
  local label=$1
  shift
  bench_run "realnet $label" "$BUILD/bin/realnet" bench realnet --preset paper --res 256 --device cuda \
    --seconds "$SECONDS_PER_RUN" "$@"
}
if [ "$BENCH" -eq 1 ]; then
  : >"$LOG_DIR/bench.log"
  export REALNET_CUDNN_BENCHMARK=${REALNET_CUDNN_BENCHMARK:-1} # time cuDNN's algorithms in the warm-up batches
  # the runs that decide issue 8's targets first, so a short budget still measures them
  step "benchmark: RealNet inference, paper model (WideResNet-50-2 layers 1-4, dims 256/512/512/256), 256x256: targets"
  realnet_bench "batch=32 tf32" --batch 32 --tf32
  realnet_bench "batch=1 tf32 --graph" --batch 1 --tf32 --graph
  realnet_bench "batch=1 tf32 --graph lanes=4" --batch 1 --tf32 --graph --lanes 4
  step "benchmark: the bfloat16 autocast of convolutions and products (--bf16), CUDA graph"
  realnet_bench "batch=32 bf16 --graph" --batch 32 --bf16 --graph
  realnet_bench "batch=1 bf16 --graph" --batch 1 --bf16 --graph
  step "benchmark: the other settings (float32, op by op, lanes)"
  realnet_bench "batch=32 tf32 --graph" --batch 32 --tf32 --graph
  realnet_bench "batch=32 tf32 --graph lanes=4" --batch 32 --tf32 --graph --lanes 4
  realnet_bench "batch=1 tf32" --batch 1 --tf32
  realnet_bench "batch=1 tf32 lanes=4" --batch 1 --tf32 --lanes 4
  for batch in 32 1; do
    realnet_bench "batch=$batch float32" --batch "$batch"
    realnet_bench "batch=$batch float32 --graph" --batch "$batch" --graph
  done
  step "profile: where a batch-1 TF32 forward spends its time, per module (each waited for; $LOG_DIR/profile.txt)"
  left=$(( BUDGET - ($(date +%s) - t_start) ))
  if [ "$left" -ge 60 ]; then
    timeout 120 "$BUILD/bin/realnet" bench realnet --preset paper --res 256 --batch 1 --device cuda --tf32 \
      --seconds 1 --profile >"$LOG_DIR/profile.txt" 2>&1
    grep -E "kernel calls|stages" "$LOG_DIR/profile.txt"
    grep -A 25 "^label" "$LOG_DIR/profile.txt"
  else
    echo "skipped (the ${BUDGET}s budget is spent)"
  fi
  step "benchmark: WideResNet-50-2 layer1..4 alone at 256x256"
  for tf in "--tf32" "--bf16" ""; do
    for batch in 32 1; do
      bench_run "backbone batch=$batch ${tf:-float32}" "$BUILD/bin/bench_cuda_backbone" --batch "$batch" --res 256 \
        --seconds "$SECONDS_PER_RUN" $tf
    done
  done
fi

step "summary"
echo "GPU:        $GPU_NAME"
echo "build:      $build_note"
echo "agreement:  ${summary_line:-no ctest summary} (log: $LOG_DIR/ctest.log)"
for l in "${bench_lines[@]}"; do
  ips=$(printf '%s' "$l" | sed -n 's/.*: \([0-9.]*\) img\/s.*/\1/p')
  batch=$(printf '%s' "$l" | sed -n 's/.*batch=\([0-9]*\).*/\1/p')
  target=""
  case "$l" in
    "realnet inference:"*)
      if [ -n "$ips" ] && [ "$batch" = 32 ]; then target=" (target >= 300 img/s: $(awk -v v="$ips" 'BEGIN{print (v >= 300) ? "met" : "NOT met"}'))"; fi
      if [ -n "$ips" ] && [ "$batch" = 1 ]; then target=" (target >= 100 FPS: $(awk -v v="$ips" 'BEGIN{print (v >= 100) ? "met" : "NOT met"}'))"; fi ;;
  esac
  echo "bench:      ${l#result: }$target"
done
echo "(targets of issue 8: RealNet inference with the paper's model at 256x256 on an H200)"
echo "total:      $(( $(date +%s) - t_start ))s"
if [ "$tests_ok" -eq 1 ]; then echo "gpu-check: PASS"; exit 0; fi
echo "gpu-check: FAIL"
exit 1
