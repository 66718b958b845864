#!/usr/bin/env bash
# Every GPU check in one run, for a machine with a CUDA GPU (a session lent one runs it there; see
# benchmarks/RESULTS.md, "GPU run"). Builds the extension with the CUDA kernels for the GPU it finds, runs the
# tests marked cuda, compute-sanitizer's memcheck and racecheck over the kernels' comparison tests, the
# throughput benchmark on the GPU and one Nsight Compute reading of the 4:4:4 kernel, within 550 s of step
# limits (a lent GPU comes with 15 minutes, its start included). Everything it writes goes under $OUT
# (default out/gpu), 8 files at most (what the device tool brings back):
#   build.log (the machine first), tests_cuda.log, sanitize.log, throughput_cuda.{txt,json,png},
#   ncu_tile_444.txt (+ tests_all.log)
#
# Usage (repository root):  OUT=/some/dir bash scripts/gpu_check.sh
#        FULL_SUITE=1 bash scripts/gpu_check.sh    # + the whole test suite on that machine (another ~2-4 min)
# Needs: python3 with a CUDA build of torch, pybind11, scikit-build-core, cmake, nvcc; no network.
# Optional: wheels in .whl/ (e.g. kornia, kornia_rs for the kornia rows) are installed into /tmp/site first.
# Each step has its own time limit, so one that hangs or fails leaves time and output for the others;
# the exit status is the number of failed steps.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out/gpu}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
failed=0
step() {  # step NAME SECONDS COMMAND...: runs COMMAND with a limit, its output appended to $OUT/NAME
  local name=$1 limit=$2
  shift 2
  local begin=$SECONDS
  timeout "$limit" "$@" >>"$OUT/$name" 2>&1
  local rc=$?
  echo "$(date -u +%H:%M:%S) $name: exit $rc after $((SECONDS - begin)) s"
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
  return "$rc"
}

if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl &&
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

{
  nvidia-smi
  nvcc --version
  "$PY" -c "
import platform, torch
print('python', platform.python_version(), 'torch', torch.__version__, 'cuda', torch.version.cuda)
print(torch.cuda.get_device_name(), 'capability', torch.cuda.get_device_capability())"
  echo
} >"$OUT/build.log" 2>&1
cat "$OUT/build.log"

# Machine code for this GPU only (CMakeLists.txt's default list builds five architectures).
arch=$("$PY" -c "import torch; print('%d%d' % torch.cuda.get_device_capability())") || arch=90
step build.log 120 env NNJPEG_CUDA=ON NNJPEG_CUDA_ARCHITECTURES="$arch" \
  "$PY" -m pip install -v --no-build-isolation --no-deps . || { tail -40 "$OUT/build.log"; exit 1; }
"$PY" -c "import nnjpeg_cuda as nj; assert nj.cuda_built(), 'built without the CUDA kernels'; print('cuda_built: True')" ||
  exit 1

# Run from tests/' parent with the installed package (the repository's python/ is not on the path).
step tests_cuda.log 90 "$PY" -m pytest -q -rs -p no:cacheprovider -m cuda tests
tail -3 "$OUT/tests_cuda.log"

# The tiled kernels pass values between phases through shared memory: racecheck finds a missing barrier,
# memcheck an access out of bounds (every tensor its own allocation). The small comparison tests only.
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do
  echo "== compute-sanitizer $tool" >>"$OUT/sanitize.log"
  step sanitize.log 60 env PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$CS" --tool "$tool" --error-exitcode 1 \
    --target-processes all "$PY" -m pytest -q -p no:cacheprovider -m "cuda and not slow" tests/test_cuda.py \
    -k matches_cpu
done
tail -3 "$OUT/sanitize.log"

step throughput_cuda.txt 180 env PYTHONUNBUFFERED=1 "$PY" benchmarks/throughput.py --device cuda --budget 0.5 \
  --json "$OUT/throughput_cuda.json" --plot "$OUT/throughput_cuda.png"
sed -n '/^Targets/,$p' "$OUT/throughput_cuda.txt"

# Hardware counters of one W1 float32 4:4:4 call: DRAM throughput as a share of the peak, the kernel's time.
step ncu_tile_444.txt 40 ncu --kernel-name regex:tile_444 --launch-skip 2 --launch-count 1 \
  --section SpeedOfLight --section MemoryWorkloadAnalysis "$PY" -c "
import sys
sys.path.insert(0, 'benchmarks')
import torch
import nnjpeg_cuda
from workloads import as_dtype, make_batch
x = as_dtype(make_batch('W1'), 'float32').cuda()
for _ in range(3):
    nnjpeg_cuda.roundtrip(x, 75)
torch.cuda.synchronize()
"
grep -E "Duration|DRAM Throughput|Memory Throughput" "$OUT/ncu_tile_444.txt"

# The whole suite only on request: it takes the longest and its CPU tests run in CI anyway.
if [ "${FULL_SUITE:-0}" = 1 ]; then
  step tests_all.log 240 "$PY" -m pytest -q -rs -p no:cacheprovider -x --ignore=tests/test_wheel.py tests
  tail -3 "$OUT/tests_all.log"
fi
exit "$failed"
