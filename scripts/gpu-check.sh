#!/usr/bin/env bash
# On a CUDA machine: build the addon with the CUDA backend together with llama-bench (one build,
# the same libraries), run the test suite with every layer on the GPU, and benchmark a synthetic
# 8B-shaped Q4_K_M model against that llama-bench. Figures go to $OUT (or /tmp/gpu-check).
#
#   scripts/gpu-check.sh [build] [test] [bench] [diag]   (no argument: build, test, bench)
#
# diag (after build): what the first H200 run left open. terminate-workers.mjs alone, with its
# exit status and output; and the 1B model's speed at 1, 4 and 16 CPU threads beside
# llama-bench's, to tell a per-token CPU cost (sampling, the logits' copy, ggml's CPU threads)
# from a per-step one.
#
# The phases can run as separate commands on the same machine: each takes a few minutes, and
# what `build` makes stays in build/. The machine needs CUDA (nvcc), cmake and a C++ compiler;
# cuBLAS may come from the toolkit or from Python's NVIDIA wheels (nvidia-cublas, which CUDA 13
# lays out as nvidia/cu13/{include,lib}). On a machine without network, `scripts/gpu-pack.sh`
# first packs node, node_modules/ and vendor/llama.cpp/ into .device/ (about 45 MB), which this
# script unpacks.
#   CUDA_ARCH=90 (H100/H200) by default; GPU_CHECK_SHAPE=8b (a smaller shape for a quick run).
#   GPU_CHECK_CUDA=0 rehearses the same steps on a machine without CUDA (CPU build, no offload).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
phases=("$@")
[ ${#phases[@]} -eq 0 ] && phases=(build test bench)
stamp() { echo "[$(date +%T)] $*" | tee -a "$out/gpu.txt"; }

# --- what a machine without network lacks: node, node_modules/, vendor/llama.cpp/
if [ -d .device ]; then
  if ! command -v node >/dev/null && [ -f .device/node.xz ]; then
    mkdir -p /tmp/device-node/bin
    [ -x /tmp/device-node/bin/node ] || { xz -dc .device/node.xz >/tmp/device-node/bin/node; chmod +x /tmp/device-node/bin/node; }
  fi
  [ -d node_modules ] || tar -xJf .device/node_modules.tar.xz
  [ -f vendor/llama.cpp/CMakeLists.txt ] || tar -xJf .device/vendor.tar.xz
fi
command -v node >/dev/null || export PATH="/tmp/device-node/bin:$PATH"
export PATH="$root/node_modules/.bin:$PATH"

cuda=${GPU_CHECK_CUDA:-1}
shape=${GPU_CHECK_SHAPE:-8b}
gpu_layers=999 test_layers=max
[ "$cuda" = 1 ] || gpu_layers=0 test_layers=0

# --- cuBLAS: the toolkit's, or the NVIDIA wheels' headers and libraries
cmake_args="-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH:-90}"
[ "$cuda" = 1 ] || cmake_args=""
cuda_home=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc || echo /none/bin/nvcc)")")")
if [ "$cuda" = 1 ] && ! ls "$cuda_home"/lib64/libcublas.so* "$cuda_home"/targets/*/lib/libcublas.so* >/dev/null 2>&1; then
  roots=$(python3 -c 'import nvidia; print("\n".join(nvidia.__path__))' 2>/dev/null || true)
  lib=$(find $roots -name 'libcublas.so*' 2>/dev/null | sort | head -1)
  lt=$(find $roots -name 'libcublasLt.so*' 2>/dev/null | sort | head -1)
  header=$(find $roots -name cublas_v2.h 2>/dev/null | head -1)
  if [ -z "$lib" ] || [ -z "$lt" ] || [ -z "$header" ]; then
    stamp "cuBLAS not found: not in $cuda_home, nor in Python's nvidia packages (${roots:-none})"
    exit 1
  fi
  export CPATH="$(dirname "$header")${CPATH:+:$CPATH}"
  export LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  cmake_args="$cmake_args -DCUDA_cublas_LIBRARY=$lib -DCUDA_cublasLt_LIBRARY=$lt"
fi

for phase in "${phases[@]}"; do
  case $phase in
  build)
    stamp "node $(node --version), cmake args: ${cmake_args:-none}"
    if [ "$cuda" = 1 ]; then
      nvcc --version | grep -o 'release [0-9.]*' | tee -a "$out/gpu.txt"
      nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version --format=csv,noheader | tee -a "$out/gpu.txt"
    fi
    start=$(date +%s)
    if ! HERMES3_CUDA=$cuda HERMES3_BUILD_BENCH=1 HERMES3_CMAKE_ARGS="$cmake_args" node scripts/install.mjs --force >"$out/build.txt" 2>&1; then
      tail -40 "$out/build.txt"
      stamp "build (CUDA: $cuda) failed after $(( $(date +%s) - start )) s (build.txt)"
      exit 1
    fi
    stamp "build (CUDA: $cuda, addon and llama-bench): $(( $(date +%s) - start )) s"
    node node_modules/typescript/bin/tsc -p tsconfig.build.json   # npm may be missing where node was carried
    node -e "import('./dist/index.js').then(m => console.log(JSON.stringify(m.getBackendInfo().devices)))" | tee -a "$out/gpu.txt"
    ;;
  test)
    start=$(date +%s)
    # 'max' puts every layer on the GPU in the parity test and its C API reference; the other
    # tests load with the default nGpuLayers 'auto', which offloads the small fixtures whole
    HERMES3_TEST_GPU_LAYERS=$test_layers vitest run >"$out/test.txt" 2>&1 || true
    grep -E "Test Files|Tests |FAIL" "$out/test.txt" | head -30 | tee -a "$out/gpu.txt"
    stamp "tests: $(( $(date +%s) - start )) s (test.txt)"
    ;;
  bench)
    start=$(date +%s)
    # no network there: node-llama-cpp cannot be installed
    node dist/cli/index.js bench --shape "$shape" --quant Q4_K_M --gpu-layers $gpu_layers --only hermes3,llama-bench,batched-bench \
      --cache "$PWD/.cache/bench" --json "$out/bench.json" --svg "$out/bench.svg" 2>&1 | tee -a "$out/gpu.txt"
    stamp "bench (incl. writing the model once): $(( $(date +%s) - start )) s"
    ;;
  diag)
    start=$(date +%s)
    fixture=$(ls .cache/fixtures/tiny-f16.gguf 2>/dev/null || true)
    if [ -z "$fixture" ]; then
      node -e "import('./dist/testing/index.js').then((m) => m.writeSyntheticModel({ path: '.cache/fixtures/tiny-f16.gguf', shape: 'tiny', quant: 'F16', seed: 1 }))"
      fixture=.cache/fixtures/tiny-f16.gguf
    fi
    set +e
    node test/model/programs/terminate-workers.mjs "$fixture" "file://$root/dist/index.js" >"$out/diag.txt" 2>&1
    rc=$?
    set -e
    stamp "terminate-workers.mjs: exit status $rc (diag.txt: $(tail -c 300 "$out/diag.txt" | tr '\n' ' '))"
    for threads in 1 4 16; do
      node dist/cli/index.js bench --shape 1b --quant Q4_K_M --gpu-layers $gpu_layers --only hermes3,llama-bench --threads $threads --reps 3 \
        --cache "$PWD/.cache/bench" 2>&1 | grep -E '^\| (pp512|tg128|time to first)' | sed "s/^/threads $threads: /" | tee -a "$out/gpu.txt"
    done
    stamp "diag: $(( $(date +%s) - start )) s"
    ;;
  *)
    echo "unknown phase: $phase (expected build, test, bench or diag)" >&2
    exit 2
    ;;
  esac
done
