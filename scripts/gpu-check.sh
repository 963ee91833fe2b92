#!/usr/bin/env bash
# On a CUDA machine: build the CUDA backend, run the test suite with every layer on the GPU, and
# benchmark a synthetic 8B-shaped Q4_K_M model against llama-bench's CUDA build from the same
# vendored tree. Results go to $OUT (or /tmp/gpu-check).
#
# The machine needs CUDA (nvcc), cmake and a C++ compiler; cuBLAS may come from Python's
# nvidia-cublas package. Without network it also needs what `npm ci` and `npm run vendor` made
# here: node_modules/ and vendor/llama.cpp/ travel with the tree, and a node binary in
# .device-node/bin/ when the machine has none.
#   CUDA_ARCH=90 (H100/H200) by default.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
command -v node >/dev/null || export PATH="$PWD/.device-node/bin:$PATH"
node --version
nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv | tee "$out/gpu.txt"
arch=${CUDA_ARCH:-90}

# cuBLAS: the toolkit's, or the nvidia-cublas wheel's headers and libraries
cmake_args="-DCMAKE_CUDA_ARCHITECTURES=$arch"
cuda_home=$(dirname "$(dirname "$(command -v nvcc)")")
if ! ls "$cuda_home"/lib64/libcublas.so* >/dev/null 2>&1; then
  cublas=$(python3 -c 'import nvidia.cublas as c, os; print(os.path.dirname(c.__file__) if c.__file__ else list(c.__path__)[0])')
  lib=$(ls "$cublas"/lib/libcublas.so.* | head -1)
  lt=$(ls "$cublas"/lib/libcublasLt.so.* | head -1)
  export CPATH="$cublas/include${CPATH:+:$CPATH}"
  export LD_LIBRARY_PATH="$cublas/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  cmake_args="$cmake_args -DCUDA_cublas_LIBRARY=$lib -DCUDA_cublasLt_LIBRARY=$lt"
  echo "cuBLAS from $cublas" | tee -a "$out/gpu.txt"
fi

# the addon with CUDA, and the test suite on the GPU
start=$(date +%s)
HERMES3_CUDA=1 HERMES3_CMAKE_ARGS="$cmake_args" node scripts/install.mjs --force >"$out/build.txt" 2>&1 || { tail -40 "$out/build.txt"; exit 1; }
echo "CUDA build: $(( $(date +%s) - start )) s" | tee -a "$out/gpu.txt"
npm run compile >/dev/null
node -e "import('./dist/index.js').then(m => console.log(JSON.stringify(m.getBackendInfo().devices)))" | tee -a "$out/gpu.txt"
HERMES3_TEST_GPU_LAYERS=999 npx vitest run >"$out/test.txt" 2>&1 || true
grep -E "Test Files|Tests " "$out/test.txt" | tee -a "$out/gpu.txt"

# llama-bench with CUDA from the same tree, then the benchmark on an 8B-shaped Q4_K_M model
cmake -S bench/anchor -B build/anchor-cuda -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON $cmake_args >"$out/anchor.txt" 2>&1
cmake --build build/anchor-cuda --target llama-bench -j >>"$out/anchor.txt" 2>&1
node bench/bench.mjs --shape 8b --quant Q4_K_M --gpu-layers 999 --anchor build/anchor-cuda/llama-bench/llama-bench --json "$out/bench.json" | tee -a "$out/gpu.txt"
