#!/usr/bin/env bash
# Print the name benchmark results are filed under on this machine: the GPU model when one is
# visible (h100-sxm, h100-pcie, h200, a100, ...), else cpu-<n>core. SPK_MACHINE overrides.
# Uses the source tree's spkernels.bench.machine, so it works before the package is installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m spkernels.bench.machine
