#!/usr/bin/env bash
# `ci/gpu.sh --quick`: the GPU check that fits the minutes a GPU machine comes with. Run it
# through ci/gpu.sh (which sets SPK_WHEELS, SPK_OUT, SPK_BUDGET, PYTHON); see its header for
# the step list and time limits. Each step runs under `timeout`; a step is skipped when less
# than its limit is left of the budget (the build's limit is never cut: nothing works without
# it). A failed step does not stop the later ones; the script exits 1 if any failed or timed
# out. summary.md in the output folder has one row per step.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PYTHON=${PYTHON:-python3}
wheels=${SPK_WHEELS:-.whl}
budget=${SPK_BUDGET:-480}
mkdir -p "${SPK_OUT:-gpu-run}"
out=$(cd "${SPK_OUT:-gpu-run}" && pwd)
export PYTHONUNBUFFERED=1
start=$(date +%s)
summary="$out/summary.md"
rows=()
failed=0

source ci/site_env.sh  # pip_target, PYTHONPATH for SPK_SITE

# run_step NAME LIMIT HEADLINE -- CMD...: runs CMD under `timeout LIMIT` with its output in
# $out/NAME.log; HEADLINE (a function name, or "") prints the row's headline afterwards.
run_step() {
  local name=$1 limit=$2 headline=$3
  shift 4
  local now left t0 rc status secs head
  now=$(date +%s)
  left=$((budget - (now - start)))
  if [[ $name != build && $left -lt $limit ]]; then
    if [[ $left -ge 30 ]]; then
      limit=$left  # run what fits rather than nothing
    else
      rows+=("| $name | skipped: budget spent | 0 | |")
      printf '\n=== %s: skipped, %s s of the budget left\n' "$name" "$left"
      return 0
    fi
  fi
  printf '\n=== %s (limit %s s, %s s of the budget left, %s)\n' "$name" "$limit" "$left" "$(date -u +%H:%M:%S)"
  t0=$(date +%s)
  timeout --kill-after=15 "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  secs=$(($(date +%s) - t0))
  tail -n 15 "$out/$name.log"
  case $rc in
    0) status=ok ;;
    124|137) status="TIMEOUT after $limit s"; failed=1 ;;
    *) status="FAILED (exit $rc)"; failed=1 ;;
  esac
  head=""
  [[ -n $headline ]] && head=$("$headline" 2>/dev/null | tr '\n|' ' /' | cut -c1-160)
  rows+=("| $name | $status | $secs | $head |")
  printf '=== %s: %s in %s s\n' "$name" "$status" "$secs"
  return 0
}

hl_wheels() { echo "${#whl[@]} wheels from $wheels"; }
hl_build() { grep -E 'spkernels:' "$out/build.log" | head -n 2; }
hl_tests() { tail -n 1 "$out/tests.log"; }
hl_sanitizer() { grep -E 'ERROR SUMMARY' "$out/sanitizer.log" | sort | uniq -c; }
hl_mtip() {
  "$PYTHON" - "$out/mtip.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["seconds"]
print(f"{d['generation_seconds']:.1f} s per generation (match {s.get('match', 0):.1f}, merge {s['merge']:.1f}, "
      f"phase {s['phase']:.1f}); {d['images']} images, {d['references']} references, M = {d['M']}")
PY
}
hl_asv() { echo "$(grep -ciE 'failed' "$out/asv.log") lines report a failure; see asv-summary.md"; }
hl_compare() { tail -n 3 "$out/compare.log"; }

nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader | tee "$out/gpu.txt"
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' .')

shopt -s nullglob
whl=("$wheels"/*.whl)
if [[ ${#whl[@]} -gt 0 ]]; then
  run_step wheels 30 hl_wheels -- \
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "${pip_target[@]}" "${whl[@]}"
else
  rows+=("| wheels | skipped: no wheels in $wheels | 0 | |")
fi

# Only this GPU's architecture (CUDAARCHS is what CMAKE_CUDA_ARCHITECTURES defaults to), all
# cores: the .cu files compile in parallel, the largest (nufft.cu, 15 widths x 2 types) sets the
# time.
export CUDAARCHS=${CUDAARCHS:-${cc:-90}}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
run_step build 300 hl_build -- \
  "$PYTHON" -m pip install -v --no-index --no-build-isolation --no-deps "${pip_target[@]}" .
(cd /tmp && "$PYTHON" -m spkernels info) >"$out/info.txt" 2>&1 || true
machine=$(PYTHON="$PYTHON" ci/machine-name.sh 2>/dev/null || echo unknown)

# Tests that exercise a GPU backend (parametrised with cuda or numba-cuda), required to run.
# The host-execution tests (test_cuda_host) and the simulator re-run need no GPU: CI has them.
run_step tests 100 hl_tests -- \
  env SPK_REQUIRE_BACKENDS=cuda,numba-cuda "$PYTHON" -m pytest -q -p no:cacheprovider --maxfail=25 \
  -m "not slow" -k "cuda and not simulator and not cuda_host" tests

run_step sanitizer 60 hl_sanitizer -- \
  bash -c 'for tool in memcheck racecheck; do echo "--- $tool"; compute-sanitizer --tool $tool --error-exitcode 1 \
    --print-limit 20 "$0" ci/sanitize_kernels.py --strict || exit 1; done' "$PYTHON"

run_step mtip 90 hl_mtip -- "$PYTHON" ci/mtip_generation.py --backend cuda --out "$out/mtip.json"

# One asv pass (--quick: each benchmark once) at the GPU sizes of every family (the CG and FSC
# classes also hold their CPU backends). Results are filed but are smoke numbers, not to commit.
export SPK_CEILINGS_FILE="$out/ceilings.json"
rm -f "$SPK_CEILINGS_FILE"
run_step asv 60 hl_asv -- \
  env PYTHON="$PYTHON" ci/asv-run.sh --quick \
  -b '^bench_ceilings\.' -b '^bench_distance\.GPU' -b '^bench_nufft\.NufftGPU' -b '^bench_cg\.' -b '^bench_fsc\.'
if [[ -d "asv_benches/results/$machine" ]]; then
  "$PYTHON" ci/summarize_asv.py asv_benches/results --machine "$machine" --out "$out/asv-summary.md" \
    >/dev/null 2>&1 || true
fi

run_step compare 40 hl_compare -- \
  bash -c 'cd /tmp && "$0" -m spkernels bench compare --size full --backend cuda --backend numba-cuda --out "$1"' \
  "$PYTHON" "$out/compare-gpu"

{
  echo "# ci/gpu.sh --quick on $(head -n1 "$out/gpu.txt" 2>/dev/null) ($(date -u +%Y-%m-%d))"
  echo
  echo "commit $(git rev-parse --short HEAD 2>/dev/null), machine $machine, budget $budget s, total $(($(date +%s) - start)) s"
  echo
  echo "| step | status | seconds | headline |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  if [[ -f "$out/mtip.json" ]]; then
    echo
    echo '## MTIP generation'
    echo
    echo '```json'
    cat "$out/mtip.json"
    echo '```'
  fi
  if [[ -f "$out/asv-summary.md" ]]; then
    echo
    cat "$out/asv-summary.md"
  fi
} >"$summary"
printf '\n'
cat "$summary"
exit "$failed"
