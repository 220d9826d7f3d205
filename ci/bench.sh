#!/usr/bin/env bash
# Compare two commits the way `asv continuous` does, offline, and fail on a slowdown.
#
#   ci/bench.sh [BASE] [HEAD] [--factor 1.2] [--bench REGEX] [--quick] [--keep]
#
# BASE defaults to main, HEAD to HEAD (the working tree's commit). Each commit is checked out
# into a temporary worktree, built without build isolation into its own folder (pip --target)
# and benchmarked with asv_benches/asv.conf.json (existing environment: this Python plus that
# folder first on the path), using the *current* benchmark suite for both, as asv continuous
# does. Results go to a temporary results folder, not the committed one. Then every `time_*`
# benchmark is compared: the script exits 1 when any is slower than FACTOR times the base (and
# the difference is outside asv's confidence intervals), or fails only on HEAD.
# track_* metrics (throughputs, fractions, ratios) are printed but not gated: for them higher is
# better, which asv's comparison does not know.
#
# With a package index at hand, `asv continuous --config asv_benches/asv.continuous.conf.json
# --factor 1.2 main HEAD` does the same with asv's own per-commit virtualenvs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PYTHON=${PYTHON:-python3}

commits=()
factor=1.2
bench=()
quick=()
keep=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --factor) factor=$2; shift 2 ;;
    --bench|-b) bench+=(--bench "$2"); shift 2 ;;
    --quick) quick=(--quick); shift ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "ci/bench.sh: unknown option $1" >&2; exit 64 ;;
    *) commits+=("$1"); shift ;;
  esac
done
base=$(git rev-parse --verify "${commits[0]:-main}^{commit}")
head=$(git rev-parse --verify "${commits[1]:-HEAD}^{commit}")
[[ $base != "$head" ]] || { echo "ci/bench.sh: BASE and HEAD are the same commit ${base:0:10}" >&2; exit 64; }

work=$(mktemp -d "${TMPDIR:-/tmp}/spk-bench.XXXXXX")
cleanup() {
  for sha in "$base" "$head"; do git worktree remove --force "$work/src-$sha" 2>/dev/null || true; done
  [[ $keep == 1 ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

# A copy of the quick-run config whose results land in the temporary folder.
"$PYTHON" - "$root/asv_benches/asv.conf.json" "$work/asv.conf.json" "$root" "$work" <<'PY'
import json, sys
src, dst, root, work = sys.argv[1:]
text = "\n".join(l for l in open(src).read().splitlines() if not l.lstrip().startswith("//"))
conf = json.loads(text)
conf.update(repo=root, benchmark_dir=f"{root}/asv_benches", results_dir=f"{work}/results",
            html_dir=f"{work}/html", env_dir=f"{work}/env")
json.dump(conf, open(dst, "w"), indent=1)
PY

for sha in "$base" "$head"; do
  echo "=== build ${sha:0:10}" >&2
  git worktree add --detach --force "$work/src-$sha" "$sha" >/dev/null
  "$PYTHON" -m pip install -q --no-index --no-build-isolation --no-deps --target "$work/site-$sha" \
    "$work/src-$sha" >"$work/build-$sha.log" 2>&1 || { tail -n 40 "$work/build-$sha.log" >&2; exit 1; }
  echo "=== benchmark ${sha:0:10}" >&2
  set +e
  ASV_CONFIG="$work/asv.conf.json" ASV_PYTHONPATH="$work/site-$sha" ASV_COMMIT="$sha" PYTHON="$PYTHON" \
    ci/asv-run.sh "${quick[@]}" "${bench[@]}"
  rc=$?
  set -e
  # A failed benchmark on BASE is no reason to stop; on HEAD the gate below reports it.
  [[ $rc == 0 || $rc == 2 ]] || exit "$rc"
done

machine=$(PYTHON="$PYTHON" ci/machine-name.sh)
"$PYTHON" -m asv compare --config "$work/asv.conf.json" --machine "$machine" --factor "$factor" --split --only-changed \
  "$base" "$head" || true
"$PYTHON" ci/compare_asv.py "$work/results" "$base" "$head" --machine "$machine" --factor "$factor"
