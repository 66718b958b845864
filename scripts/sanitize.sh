#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the CPU kernels (see docs/RELIABILITY.md).
#
# 1. Configures the project with -DNNJPEG_SANITIZE=ON -DNNJPEG_CUDA=OFF into its own build directory
#    (build/sanitize; the normal build is untouched) and builds the _C module and the planted-bug program.
# 2. Planted bugs: tests/sanitizer/planted_oob.cpp must run clean in "ok" mode and be caught in "oob"
#    (heap-buffer-overflow in the kernel's store) and "ubsan" (int64 overflow of its block count) mode.
#    This proves the instrumentation is live; a sanitizer that catches nothing would fail here.
# 3. Runs the kernel tests against the sanitized _C. How it is loaded (nothing in the package changes):
#    the package's Python files are copied with the sanitized _C into build/sanitize/stage, which goes first
#    on PYTHONPATH; a sitecustomize.py there drops import hooks (an editable install's redirect finder)
#    that would load nnjpeg_cuda from elsewhere, and the script checks which _C was imported. The sanitizer
#    runtimes the module links are LD_PRELOADed (Python itself is not instrumented); leak detection is off
#    because the interpreter itself leaks at exit.
#
# 4. Where a GPU, the CUDA kernels and compute-sanitizer are present: memcheck and racecheck over the CUDA tests.
#
# Usage: scripts/sanitize.sh [pytest args...]     (default: the kernel, batch, fuzz, limits and determinism
#        tests that exist, without the slow/cuda/data ones)
# Env:   PYTHON (default: .venv/bin/python, else python3), NNJPEG_SANITIZE_BUILD (default build/sanitize),
#        NNJPEG_FUZZ_EXAMPLES (scales the fuzz tests). Exits 0 with a message when no C++ compiler or cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-}
if [ -z "$PY" ]; then if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi; fi
PY=$(command -v "$PY")
case "$PY" in /*) ;; *) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac  # absolute, symlink kept
BUILD=${NNJPEG_SANITIZE_BUILD:-build/sanitize}
CXX=${CXX:-c++}

if ! command -v "$CXX" >/dev/null 2>&1 || ! command -v cmake >/dev/null 2>&1; then
  echo "sanitize.sh: SKIPPED (no C++ compiler '$CXX' or no cmake on PATH)"
  exit 0
fi
start=$(date +%s)

# --- 1. build ----------------------------------------------------------------------------------------
PYBIND11_DIR=$("$PY" -m pybind11 --cmakedir 2>/dev/null) || {
  echo "sanitize.sh: pybind11 is missing in $PY (it is in the 'test' extra: pip install '.[test]')" >&2; exit 1; }
GENERATOR=()
if command -v ninja >/dev/null 2>&1 || [ -x "$(dirname "$PY")/ninja" ]; then
  GENERATOR=(-G Ninja)
  [ -x "$(dirname "$PY")/ninja" ] && GENERATOR+=("-DCMAKE_MAKE_PROGRAM=$(dirname "$PY")/ninja")
fi
cmake -S . -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNNJPEG_SANITIZE=ON \
  -DNNJPEG_CUDA=OFF -DPython_EXECUTABLE="$PY" -Dpybind11_DIR="$PYBIND11_DIR" >"$BUILD.configure.log" 2>&1 || {
  cat "$BUILD.configure.log" >&2; exit 1; }
cmake --build "$BUILD" --target _C nnjpeg_planted_oob -j "${NNJPEG_SANITIZE_JOBS:-2}"
SO=$(ls "$BUILD"/_C*.so | head -n1)
built=$(date +%s)

# The sanitizer runtimes the module links (libasan/libubsan with GCC, libclang_rt.* with Clang).
# ASan's runtime must come first in the process.
PRELOAD=$(ldd "$SO" | awk '/asan/ { a = a $3 " " } /ubsan/ { u = u $3 " " } END { print a u }')
[ -n "$PRELOAD" ] || { echo "sanitize.sh: $SO links no sanitizer runtime: is NNJPEG_SANITIZE applied?" >&2; exit 1; }
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# --- 2. planted bugs -----------------------------------------------------------------------------------
PLANTED="$BUILD/nnjpeg_planted_oob"
"$PLANTED" ok
for mode in oob ubsan; do
  if "$PLANTED" "$mode" >"$BUILD/planted_$mode.log" 2>&1; then
    echo "sanitize.sh: FAILED: the planted '$mode' bug ran without a sanitizer report" >&2; exit 1
  fi
done
grep -q "ERROR: AddressSanitizer: heap-buffer-overflow" "$BUILD/planted_oob.log" || {
  cat "$BUILD/planted_oob.log" >&2; echo "sanitize.sh: FAILED: no ASan report for the planted overflow" >&2; exit 1; }
grep -q "runtime error: signed integer overflow" "$BUILD/planted_ubsan.log" || {
  cat "$BUILD/planted_ubsan.log" >&2; echo "sanitize.sh: FAILED: no UBSan report for the planted overflow" >&2; exit 1; }
echo "sanitize.sh: planted bugs caught: $(grep -m1 -o 'heap-buffer-overflow.*' "$BUILD/planted_oob.log" | cut -c1-60) |" \
  "$(grep -m1 -o 'runtime error: .*' "$BUILD/planted_ubsan.log" | cut -c1-70)"

# --- 3. the tests against the sanitized _C -------------------------------------------------------------
STAGE="$ROOT/$BUILD/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE"
cp -r python/nnjpeg_cuda "$STAGE/"
find "$STAGE" \( -name '__pycache__' -o -name '*.so' \) -prune -exec rm -rf {} +
cp "$SO" "$STAGE/nnjpeg_cuda/"
cat >"$STAGE/sitecustomize.py" <<PYEOF
# Written by scripts/sanitize.sh: import nnjpeg_cuda from this folder (with the sanitized _C), even when an
# editable install put a redirecting import hook on sys.meta_path.
import sys
_stage = "$STAGE"
for _f in list(sys.meta_path):
    try:
        _spec = _f.find_spec("nnjpeg_cuda", None)
    except Exception:
        continue
    if _spec is not None and _spec.origin and not _spec.origin.startswith(_stage):
        sys.meta_path.remove(_f)
PYEOF

run_sanitized() { PYTHONPATH="$STAGE${PYTHONPATH:+:$PYTHONPATH}" LD_PRELOAD="$PRELOAD" "$PY" "$@"; }
run_sanitized -c "
import nnjpeg_cuda._kernel as k
assert k._C is not None and k._C.__file__.startswith('$STAGE'), k._C
print('sanitize.sh: testing', k._C.__file__)"

if [ "$#" -eq 0 ]; then
  set --
  # The tests that drive the kernels with many shapes, strides, dtypes and threads; torch.compile tests and
  # the ones that spawn child processes or measure memory (meaningless under ASan's allocator) are left out.
  for t in test_kernel_vs_reference test_batch_semantics test_gradients test_fuzz test_limits test_determinism; do
    [ -f "tests/$t.py" ] && set -- "$@" "tests/$t.py"
  done
  set -- "$@" -m "not slow and not cuda and not data" -k "not separate_processes"
fi
run_sanitized -m pytest -q -p no:cacheprovider "$@"
end=$(date +%s)
echo "sanitize.sh: OK: build $((built - start)) s, planted bugs caught, tests $((end - built)) s under ASan+UBSan"

# --- 4. CUDA: compute-sanitizer memcheck and racecheck over the CUDA tests, where a GPU is visible --------
# Runs the installed package (not the ASan stage). PYTORCH_NO_CUDA_MEMORY_CACHING=1 gives every tensor its own
# cudaMalloc, so an access past a tensor's end is outside an allocation and memcheck sees it.
CS=$(command -v compute-sanitizer || true)
for d in "${CUDA_HOME:-}" /usr/local/cuda; do
  [ -z "$CS" ] && [ -n "$d" ] && [ -x "$d/bin/compute-sanitizer" ] && CS="$d/bin/compute-sanitizer"
done
if [ -n "$CS" ] && "$PY" -c "import sys, torch, nnjpeg_cuda as n; sys.exit(not (torch.cuda.is_available() and n.cuda_built()))" \
    2>/dev/null; then
  for tool in memcheck racecheck; do
    PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$CS" --tool "$tool" --error-exitcode 1 --target-processes all \
      "$PY" -m pytest -q -p no:cacheprovider -m "cuda and not slow" tests/test_cuda.py
    echo "sanitize.sh: compute-sanitizer $tool: OK"
  done
else
  echo "sanitize.sh: compute-sanitizer step skipped (needs compute-sanitizer, a visible GPU and the CUDA kernels)"
fi
