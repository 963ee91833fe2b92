#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a machine without network into .device/ (git-ignored,
# about 45 MB): this machine's node binary, node_modules/ and vendor/llama.cpp/, each xz-compressed.
# Run `npm ci` first. Then carry .device along with the working tree and run gpu-check.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] && [ -f vendor/llama.cpp/CMakeLists.txt ] || { echo "run npm ci first" >&2; exit 1; }
rm -rf .device && mkdir .device
pids=()
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" >.device/node.xz & pids+=($!)
(set -o pipefail; tar -cf - node_modules | xz -T0 -6 >.device/node_modules.tar.xz) & pids+=($!)
(set -o pipefail; tar -cf - vendor/llama.cpp | xz -T0 -6 >.device/vendor.tar.xz) & pids+=($!)
for pid in "${pids[@]}"; do wait "$pid"; done
du -ch .device/* | tail -1
