#!/usr/bin/env bash
# Everything that needs a real GPU, on a GPU machine with no network access:
#   1. install wheels from a folder, offline (asv, finufft, ...: whatever the image lacks)
#   2. build and install spkernels without build isolation (nvcc, scikit-build-core, pybind11
#      and the runtime dependencies must already be there)
#   3. the test suite with SPK_REQUIRE_BACKENDS=cuda,numba-cuda: a missing GPU backend fails
#   4. compute-sanitizer memcheck and racecheck over one tiny call of each CUDA kernel
#   5. the asv suite (results filed under this machine's name for HEAD) and a C++ vs Numba
#      comparison, with Markdown summaries
# Any failing step fails the script (set -e, pipefail; asv exits non-zero on a failed benchmark).
#
#   ci/gpu.sh [--wheels DIR] [--out DIR] [--asv-quick] [--skip-tests] [--skip-sanitizer] [--skip-asv]
#   ci/gpu.sh --quick [--wheels DIR] [--out DIR] [--budget SECONDS]
#
# --wheels DIR  wheels to install offline (default .whl/, with --quick the first of
#               shared/wheels-gpu, ../shared/wheels-gpu, .whl; skipped when absent or empty)
# --out DIR     logs, summaries, ceilings, compare table/chart and a tarball of the asv results
#               (default gpu-run/); asv results also stay in asv_benches/results/<machine>/,
#               ready to commit, with a README.md summary beside them
# --asv-quick   asv --quick (each benchmark once): a smoke run, not numbers to commit
# --quick       the check that fits the minutes a GPU machine comes with (default budget 480 s
#               from a fresh machine). Steps, most valuable first, each under its own time limit
#               (seconds), skipped when the budget cannot hold it; a failing step does not stop
#               the later ones, but the script exits 1 at the end:
#                 wheels 30, build for this GPU's architecture only 300, GPU tests (tests
#                 parametrised with cuda / numba-cuda, not slow) 100, compute-sanitizer memcheck
#                 + racecheck 60, MTIP generation at full size (1e4 images of 128², 1e4
#                 references, M = 81) 90, asv --quick at GPU sizes per family 60,
#                 bench compare cuda vs numba-cuda 40 (limits are estimates until the first
#                 GPU run; a step that does not fit runs in what is left, or is skipped
#                 under 30 s; nvcc on nufft.cu alone took about 10 min for sm_90 on the shared
#                 2-core development machine, so the build's share is the first to check)
#               Everything lands in --out, with summary.md: one row per step (status, seconds,
#               headline) and the MTIP timing.
# SPK_SITE=DIR  install into DIR (pip --target) instead of the current environment
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

wheels=.whl
out=gpu-run
quick=()
quick_mode=0
budget=480
wheels_given=0
run_tests=1
run_sanitizer=1
run_asv=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --wheels) wheels=$2; wheels_given=1; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --asv-quick) quick=(--quick); shift ;;
    --quick) quick_mode=1; shift ;;
    --budget) budget=$2; shift 2 ;;
    --skip-tests) run_tests=0; shift ;;
    --skip-sanitizer) run_sanitizer=0; shift ;;
    --skip-asv) run_asv=0; shift ;;
    -h|--help) sed -n '2,39p' "$0"; exit 0 ;;
    *) echo "ci/gpu.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$out"
out=$(cd "$out" && pwd)
step() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

source ci/site_env.sh  # pip_target, PYTHONPATH for SPK_SITE

if [[ $quick_mode == 1 ]]; then
  if [[ $wheels_given == 0 ]]; then
    for d in shared/wheels-gpu ../shared/wheels-gpu .whl; do
      [[ -d $d ]] && { wheels=$d; break; }
    done
  fi
  export SPK_WHEELS="$wheels" SPK_OUT="$out" SPK_BUDGET="$budget" PYTHON
  exec bash ci/gpu_quick.sh
fi

step "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

step "offline wheels from $wheels"
shopt -s nullglob
whl=("$wheels"/*.whl)
if [[ ${#whl[@]} -gt 0 ]]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "${pip_target[@]}" "${whl[@]}"
else
  echo "no wheels in $wheels; using what is installed"
fi

step "build + install spkernels (no build isolation, no network)"
"$PYTHON" -m pip install -v --no-index --no-build-isolation --no-deps "${pip_target[@]}" . >"$out/build.log" 2>&1 \
  || { tail -n 60 "$out/build.log"; exit 1; }
grep -E "spkernels:" "$out/build.log" | sed 's/^ *//' || true
(cd /tmp && "$PYTHON" -m spkernels info) | tee "$out/info.txt"
machine=$(PYTHON="$PYTHON" ci/machine-name.sh)
echo "machine name: $machine" | tee -a "$out/info.txt"

if [[ $run_tests == 1 ]]; then
  step "tests with SPK_REQUIRE_BACKENDS=cuda,numba-cuda"
  SPK_REQUIRE_BACKENDS=cuda,numba-cuda "$PYTHON" -m pytest -q -p no:cacheprovider 2>&1 | tee "$out/pytest.log"
fi

if [[ $run_sanitizer == 1 ]]; then
  step "compute-sanitizer"
  "$PYTHON" ci/sanitize_kernels.py --list | tee "$out/sanitizer.txt"
  for tool in memcheck racecheck; do
    echo "--- $tool" | tee -a "$out/sanitizer.txt"
    compute-sanitizer --tool "$tool" --error-exitcode 1 --print-limit 20 \
      "$PYTHON" ci/sanitize_kernels.py --strict 2>&1 | tee -a "$out/sanitizer.txt"
  done
fi

if [[ $run_asv == 1 ]]; then
  step "asv run (machine $machine)"
  # Ceilings measured in this run only: the kernels' fractions refer to them.
  export SPK_CEILINGS_FILE="$out/ceilings.json"
  rm -f "$SPK_CEILINGS_FILE"
  set +e
  PYTHON="$PYTHON" ci/asv-run.sh "${quick[@]}" 2>&1 | tee "$out/asv.log"
  asv_rc=${PIPESTATUS[0]}
  set -e
  # Summarise and pack what was measured even when a benchmark failed, then fail.
  "$PYTHON" ci/summarize_asv.py asv_benches/results --machine "$machine" \
    --out "asv_benches/results/$machine/README.md" > "$out/summary.md"
  tar -czf "$out/asv-results-$machine.tar.gz" asv_benches/results/benchmarks.json "asv_benches/results/$machine"
  [[ $asv_rc == 0 ]] || { echo "asv run failed (exit $asv_rc): see $out/asv.log" >&2; exit "$asv_rc"; }

  step "spkernels bench compare: CUDA C++ vs Numba CUDA (full size), C++ CPU vs Numba CPU (small)"
  (cd /tmp && "$PYTHON" -m spkernels bench compare --size full --backend cuda --backend numba-cuda \
    --out "$out/compare-gpu") | tee "$out/compare-gpu.txt"
  (cd /tmp && "$PYTHON" -m spkernels bench compare --size small --backend cpu --backend numba-cpu \
    --out "$out/compare-cpu") | tee "$out/compare-cpu.txt"
fi

step "done: results in $out"
ls -l "$out"
