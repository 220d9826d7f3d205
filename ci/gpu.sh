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
#   ci/gpu.sh [--wheels DIR] [--out DIR] [--quick] [--skip-tests] [--skip-sanitizer] [--skip-asv]
#
# --wheels DIR  wheels to install offline (default .whl/; skipped when absent or empty)
# --out DIR     logs, summaries, ceilings, compare table/chart and a tarball of the asv results
#               (default gpu-run/); asv results also stay in asv_benches/results/<machine>/,
#               ready to commit, with a README.md summary beside them
# --quick       asv --quick (each benchmark once): a smoke run, not numbers to commit
# SPK_SITE=DIR  install into DIR (pip --target) instead of the current environment
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

wheels=.whl
out=gpu-run
quick=()
run_tests=1
run_sanitizer=1
run_asv=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --wheels) wheels=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --quick) quick=(--quick); shift ;;
    --skip-tests) run_tests=0; shift ;;
    --skip-sanitizer) run_sanitizer=0; shift ;;
    --skip-asv) run_asv=0; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "ci/gpu.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$out"
out=$(cd "$out" && pwd)
step() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

pip_target=()
if [[ -n "${SPK_SITE:-}" ]]; then
  mkdir -p "$SPK_SITE"
  SPK_SITE=$(cd "$SPK_SITE" && pwd)
  pip_target=(--target "$SPK_SITE" --upgrade)
  export PYTHONPATH="$SPK_SITE${PYTHONPATH:+:$PYTHONPATH}"
  export ASV_PYTHONPATH="$PYTHONPATH"
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
