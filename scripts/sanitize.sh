#!/usr/bin/env bash
# The addon and llama.cpp built with AddressSanitizer and UndefinedBehaviorSanitizer, in a build
# folder of their own (build/sanitize, apart from the source build in build/), and the model tests
# run against that addon.
#
#   scripts/sanitize.sh                   build (incrementally after the first time), run test/model
#   scripts/sanitize.sh test/model/chat.test.ts -t 'some test'    other vitest arguments
#
# Environment:
#   HERMES3_SANITIZE=LIST       the sanitizers (default address,undefined)
#   HERMES3_BUILD_DIR=DIR       the build folder (default build/sanitize)
#   CC, CXX                     the compilers (default: clang when its ASan runtime is installed,
#                               Debian/Ubuntu package libclang-rt-<version>-dev, else gcc)
#   HERMES3_BUILD_LOCK=FILE     build under `flock FILE`, for machines where builds must not overlap
#   SANITIZE_SKIP_BUILD=1       use the build folder as it is
#
# Node itself is not instrumented, so the ASan runtime is preloaded into every node process the
# tests start (LD_PRELOAD). Leak detection is off: V8 keeps memory until exit by design. Reports
# are written to DIR/reports/ (one file per process) and summarised at the end; the script exits
# non-zero when the tests fail or any report was written.
set -euo pipefail
cd "$(dirname "$0")/.."

export HERMES3_SANITIZE="${HERMES3_SANITIZE:-address,undefined}"
export HERMES3_BUILD_DIR="${HERMES3_BUILD_DIR:-build/sanitize}"
build_dir="$(mkdir -p "$HERMES3_BUILD_DIR" && cd "$HERMES3_BUILD_DIR" && pwd)"

# The ASan runtime the compiler links against, which node has to load first.
asan_runtime() {
  local cc="$1" f
  if "$cc" --version 2>/dev/null | grep -q clang; then
    for f in libclang_rt.asan-x86_64.so libclang_rt.asan.so "libclang_rt.asan-$(uname -m).so"; do
      f="$("$cc" -print-file-name="$f" 2>/dev/null || true)"
      [[ "$f" == /* && -f "$f" ]] && { echo "$f"; return 0; }
    done
    return 1
  fi
  f="$("$cc" -print-file-name=libasan.so 2>/dev/null || true)"
  [[ "$f" == /* && -e "$f" ]] && { readlink -f "$f"; return 0; }
  return 1
}

if [[ -z "${CC:-}" && -z "${CXX:-}" ]]; then
  for v in 16 17 18 19 20 ""; do
    c="clang${v:+-$v}" cxx="clang++${v:+-$v}"
    if command -v "$c" >/dev/null && command -v "$cxx" >/dev/null; then
      if asan_runtime "$c" >/dev/null; then export CC="$c" CXX="$cxx"; fi
      break
    fi
  done
  if [[ -z "${CC:-}" ]]; then
    echo "[sanitize] clang's ASan runtime is not installed (Debian/Ubuntu: apt-get install libclang-rt-16-dev); building with gcc" >&2
    export CC=gcc CXX=g++
  fi
fi
runtime=""
if [[ "$HERMES3_SANITIZE" == *address* ]]; then
  runtime="$(asan_runtime "$CC")" || {
    echo "[sanitize] no ASan runtime found for $CC: install it (Debian/Ubuntu: libclang-rt-16-dev for clang-16, libasan8 for gcc 12), or set CC/CXX to a compiler that has one" >&2
    exit 1
  }
fi
echo "[sanitize] -fsanitize=$HERMES3_SANITIZE with $CC/$CXX in $build_dir${runtime:+; preloading $runtime}" >&2

if [[ "${SANITIZE_SKIP_BUILD:-}" != 1 ]]; then
  build=(node scripts/install.mjs --force)
  [[ -n "${HERMES3_BUILD_LOCK:-}" ]] && build=(flock "$HERMES3_BUILD_LOCK" "${build[@]}")
  "${build[@]}"
fi
addon="$build_dir/Release/hermes3.node"
[[ -f "$addon" ]] || { echo "[sanitize] $addon is missing: run without SANITIZE_SKIP_BUILD=1" >&2; exit 1; }
[[ -f dist/index.js ]] || npm run compile

reports="$build_dir/reports"
rm -rf "$reports" && mkdir -p "$reports"
tests=("$@")
[[ ${#tests[@]} -gt 0 ]] || tests=(test/model)

set +e
env HERMES3_ADDON_PATH="$addon" \
  ${runtime:+LD_PRELOAD="$runtime"} \
  ASAN_OPTIONS="detect_leaks=0:log_path=$reports/asan:abort_on_error=0:print_summary=1" \
  UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan" \
  npx vitest run "${tests[@]}"
status=$?
set -e

shopt -s nullglob
found=("$reports"/*)
if [[ ${#found[@]} -gt 0 ]]; then
  echo "[sanitize] ${#found[@]} sanitizer report file(s) in $reports:" >&2
  # the first line of each distinct report, with the frames that name its place
  grep -h -E "ERROR: AddressSanitizer|runtime error:|SUMMARY:" "${found[@]}" | sort | uniq -c | sort -rn | head -40 >&2
  [[ $status -ne 0 ]] || status=1
else
  echo "[sanitize] no sanitizer reports" >&2
fi
exit $status
