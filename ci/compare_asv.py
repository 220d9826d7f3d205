#!/usr/bin/env python3
"""Gate for ``ci/bench.sh``: exit 1 when a ``time_*`` benchmark got slower between two commits.

    python3 ci/compare_asv.py RESULTS_DIR BASE_SHA HEAD_SHA --machine NAME [--factor 1.2]

A benchmark (each parameter combination separately) regresses when HEAD's time exceeds
FACTOR × BASE's and the change is significant by asv's own test (confidence intervals or
samples, as in ``asv compare``), or when it ran on BASE and fails on HEAD. Skipped
combinations (NaN on both) are ignored. ``track_*`` results are listed but never gated.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path


def _load_commit(results_dir: Path, machine: str, sha: str) -> dict:
    found = [p for p in (results_dir / machine).glob("*.json")
             if p.name != "machine.json" and json.loads(p.read_text())["commit_hash"].startswith(sha)]
    if not found:
        raise SystemExit(f"no results for commit {sha[:10]} on machine {machine!r} in {results_dir}")
    data = json.loads(found[0].read_text())
    cols = data["result_columns"]
    out = {}
    for name, raw in data["results"].items():
        row = dict(zip(cols, raw))
        params = row.get("params") or []
        combos = list(itertools.product(*params)) if params else [()]
        values = row.get("result") or [None] * len(combos)
        stat_cols = {c[len("stats_"):]: row.get(c) or [None] * len(combos) for c in cols if c.startswith("stats_")}
        samples = row.get("samples") or [None] * len(combos)
        for i, combo in enumerate(combos):
            # asv's (stats, samples) pair, as `asv compare` builds it from the same columns.
            stats = {k: v[i] for k, v in stat_cols.items() if v[i] is not None}
            out[(name, combo)] = (values[i], (stats or None, samples[i]))
    return out


def _significantly_slower(t_old, t_new, ss_old, ss_new, factor) -> bool:
    try:  # asv's own decision, as `asv compare` prints it
        from asv.commands.compare import _is_result_better

        return _is_result_better(t_old, t_new, ss_old, ss_new, factor, use_stats=True)
    except ImportError:
        return t_new > factor * t_old


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results_dir", type=Path)
    ap.add_argument("base")
    ap.add_argument("head")
    ap.add_argument("--machine", required=True)
    ap.add_argument("--factor", type=float, default=1.2)
    args = ap.parse_args(argv)
    if args.factor < 1:
        ap.error("--factor must be at least 1")
    old = _load_commit(args.results_dir, args.machine, args.base)
    new = _load_commit(args.results_dir, args.machine, args.head)
    regressions, lines = [], []
    for key in sorted(set(old) | set(new)):
        name, combo = key
        if ".time_" not in name:
            continue
        (t_old, ss_old), (t_new, ss_new) = old.get(key, (None, None)), new.get(key, (None, None))
        label = f"{name}({', '.join(c.strip(chr(39)) for c in combo)})"
        isnan = lambda v: isinstance(v, float) and math.isnan(v)  # noqa: E731
        if isnan(t_old) and isnan(t_new) or (t_old is None and t_new is None):
            continue
        if t_new is None and t_old is not None and not isnan(t_old):
            regressions.append(label)
            lines.append(f"FAILS   {label}: ran on base, fails on head")
            continue
        if t_old is None or t_new is None or isnan(t_old) or isnan(t_new):
            lines.append(f"n/a     {label}")
            continue
        ratio = t_new / t_old
        if ratio > args.factor and _significantly_slower(t_old, t_new, ss_old, ss_new, args.factor):
            regressions.append(label)
            mark = "SLOWER "
        else:
            mark = "ok     "
        lines.append(f"{mark} {label}: {t_old:.4g} s -> {t_new:.4g} s ({ratio:.2f}x)")
    print("\n".join(lines) or "no time_* benchmarks in common")
    if regressions:
        print(f"\n{len(regressions)} regression(s) beyond {args.factor}x between "
              f"{args.base[:10]} and {args.head[:10]}:\n  " + "\n  ".join(regressions), file=sys.stderr)
        return 1
    print(f"\nno time_* benchmark slower than {args.factor}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
