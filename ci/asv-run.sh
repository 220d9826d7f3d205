#!/usr/bin/env bash
# Run the asv suite on the installed spkernels (asv_benches/asv.conf.json, existing
# environment) and file the results under this machine's name for the current commit.
#
#   ci/asv-run.sh                 # full run, results saved in asv_benches/results/<machine>/
#   ci/asv-run.sh --quick -b copy # extra arguments go to `asv run`
#
# Environment: SPK_MACHINE (override the machine name), ASV_COMMIT (commit to file results
# under; default HEAD), ASV_CONFIG (default asv_benches/asv.conf.json), PYTHON (interpreter
# that has spkernels installed; default python3), PYTHONPATH / ASV_PYTHONPATH (see below).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PYTHON=${PYTHON:-python3}
machine=$(PYTHON="$PYTHON" ci/machine-name.sh)
commit=${ASV_COMMIT:-$(git rev-parse HEAD)}
config=$(cd "$(dirname "${ASV_CONFIG:-asv_benches/asv.conf.json}")" && pwd)/$(basename "${ASV_CONFIG:-asv_benches/asv.conf.json}")

# asv wants a machine description; record the GPU model beside the CPU so results carry both.
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1 || true)
ncpu=$("$PYTHON" -c 'import os; print(len(os.sched_getaffinity(0)))')
ram=$(awk '/MemTotal/ {printf "%.0fGB", $2/1048576}' /proc/meminfo 2>/dev/null || echo unknown)
"$PYTHON" -m asv machine --config "$config" --yes --machine "$machine" --os "$(uname -sr)" --arch "$(uname -m)" \
  --cpu "${cpu:-unknown CPU} (${ncpu} cores)${gpu:+; GPU: $gpu}" --num_cpu "$ncpu" --ram "$ram" >/dev/null

# asv drops PYTHONPATH from the benchmark processes and honours ASV_PYTHONPATH instead; pass a
# development PYTHONPATH (e.g. PYTHONPATH=python for the working tree) through, made absolute
# because asv changes into asv_benches/.
if [[ -n "${PYTHONPATH:-}" && -z "${ASV_PYTHONPATH:-}" ]]; then
  ASV_PYTHONPATH=$(IFS=:; for p in $PYTHONPATH; do [[ -n $p ]] && printf '%s:' "$(cd "$p" 2>/dev/null && pwd || echo "$p")"; done)
  export ASV_PYTHONPATH=${ASV_PYTHONPATH%:}
fi

# Ceilings (GEMM rate, copy bandwidth) measured in this run only: a fresh shared file per run,
# unless the caller chose one (ci/gpu.sh keeps it with its outputs).
if [[ -z "${SPK_CEILINGS_FILE:-}" ]]; then
  export SPK_CEILINGS_FILE="${TMPDIR:-/tmp}/spk-ceilings-$machine-$$.json"
  trap 'rm -f "$SPK_CEILINGS_FILE"' EXIT
fi

echo "asv: machine $machine, commit ${commit:0:10}" >&2
"$PYTHON" -m asv run --config "$config" --python=same --machine "$machine" \
  --set-commit-hash "$commit" --launch-method spawn --show-stderr "$@"
