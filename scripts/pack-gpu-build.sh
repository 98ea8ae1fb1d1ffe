#!/usr/bin/env bash
# pack-gpu-build.sh - packs a CUDA build of realnet with the shared libraries it links, lua5.4 and busted, so
# that scripts/gpu-check.sh --no-build can run on a GPU machine that has the NVIDIA driver, CUDA, cuDNN and cuBLAS
# but none of the build's other dependencies (oneDNN, OpenBLAS, HDF5, libpng, Lua). This is how the H200
# figures in the README were measured: built here, checked there.
#
#   scripts/pack-gpu-build.sh [--build build-gpu] [--out realnet-gpu.tar.xz]
#   # on the GPU machine, in a checkout of the same commit:
#   tar -xJf realnet-gpu.tar.xz && bash gpu-pack/run-gpu-check.sh [gpu-check options]
#
# glibc, libstdc++, libgcc and the CUDA libraries the driver machine provides (cuDNN, cuBLAS, NCCL) are not
# packed: the GPU machine's own are newer or match its driver; run-gpu-check.sh finds them. The CTest files
# name the source tree the build was made in: run-gpu-check.sh links the checkout there when that path is free.
set -euo pipefail

BUILD=build-gpu
OUT=realnet-gpu.tar.xz
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=${2:?--build needs a directory}; shift ;;
    --out) OUT=${2:?--out needs a file}; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "pack-gpu-build: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/.."
for f in "$BUILD/bin/realnet" "$BUILD/bin/bench_cuda_backbone" "$BUILD/CTestTestfile.cmake"; do
  [ -e "$f" ] || { echo "pack-gpu-build: $f is missing: build $BUILD with CUDA on first" >&2; exit 1; }
done
grep -q "REALNET_CUDA:BOOL=ON" "$BUILD/CMakeCache.txt" || { echo "pack-gpu-build: $BUILD has CUDA off" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/gpu-pack/lib" "$stage/gpu-pack/bin" "$stage/gpu-pack/lua-share" "$stage/gpu-pack/lua-lib"
lua_lib=/usr/lib/x86_64-linux-gnu/lua/5.4
bins=("$BUILD/bin/realnet" "$BUILD/bin/bench_cuda_backbone" "$BUILD"/lib/realnet/*.so "$BUILD"/tests/test_cuda_*
      "$(command -v lua5.4)")
while IFS= read -r so; do bins+=("$so"); done < <(find "$lua_lib" -name '*.so' 2>/dev/null)
# every linked library but the C runtime and what the GPU machine brings
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libresolv|libstdc\+\+|libgcc_s|libcuda\.so|libcudnn|libcublas|libnccl)'
for b in "${bins[@]}"; do ldd "$b" | awk '/=>/ && $3 ~ /^\// {print $1, $3}'; done | sort -u |
  while read -r name path; do
    echo "$name" | grep -Eq "$skip" || cp -L "$path" "$stage/gpu-pack/lib/$name"
  done
cp -L "$(command -v lua5.4)" "$(command -v busted)" "$stage/gpu-pack/bin/"
cp -rL /usr/share/lua/5.4/. "$stage/gpu-pack/lua-share/"
[ -d "$lua_lib" ] && cp -rL "$lua_lib/." "$stage/gpu-pack/lua-lib/"
echo "$(pwd -P)" > "$stage/gpu-pack/source-dir"

cat > "$stage/gpu-pack/run-gpu-check.sh" <<'EOF'
#!/usr/bin/env bash
# Runs scripts/gpu-check.sh --no-build with the packed build (see scripts/pack-gpu-build.sh). Run from the
# checkout's root after unpacking there.
set -u
pack=$(cd "$(dirname "$0")" && pwd -P)
src=$(cat "$pack/source-dir")
here=$(pwd -P)
# the CTest files name the tree the build was made in
if [ "$here" != "$src" ] && [ ! -e "$src" ]; then mkdir -p "$(dirname "$src")" && ln -s "$here" "$src"; fi
# lua5.4 and busted where CTest expects them (their own search paths find the Lua trees)
for t in lua5.4 busted; do [ -e "/usr/bin/$t" ] || cp "$pack/bin/$t" "/usr/bin/$t"; done
mkdir -p /usr/share/lua/5.4 /usr/lib/x86_64-linux-gnu/lua/5.4
cp -rn "$pack/lua-share/." /usr/share/lua/5.4/ 2>/dev/null
cp -rn "$pack/lua-lib/." /usr/lib/x86_64-linux-gnu/lua/5.4/ 2>/dev/null
# the packed libraries first, then the machine's cuDNN / cuBLAS / NCCL (system or Python wheels)
dirs="$pack/lib"
for n in libcudnn.so.9 libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do
  p=$(find /usr/local /opt /usr/lib -name "$n" 2>/dev/null | head -1)
  if [ -n "$p" ]; then dirs="$dirs:$(dirname "$p")"; else echo "run-gpu-check: $n not found on this machine"; fi
done
export LD_LIBRARY_PATH="$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
build=$(cd "$pack/.." && pwd -P)/$(cat "$pack/build-dir")
exec bash scripts/gpu-check.sh --no-build --build "$build" "$@"
EOF
chmod +x "$stage/gpu-pack/run-gpu-check.sh"
echo "$BUILD" > "$stage/gpu-pack/build-dir"
mkdir -p "$stage/$(dirname "$BUILD")"
tar -cf - "$BUILD/bin/realnet" "$BUILD/bin/bench_cuda_backbone" "$BUILD"/lib/realnet/*.so "$BUILD"/tests/test_cuda_* \
  $(find "$BUILD" -name CTestTestfile.cmake) | tar -xf - -C "$stage"
tar -cJf "$OUT" -C "$stage" .
echo "wrote $OUT ($(du -h "$OUT" | cut -f1)): unpack it in the checkout's root on the GPU machine and run" \
     "bash gpu-pack/run-gpu-check.sh"
