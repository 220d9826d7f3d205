#!/usr/bin/env python3
"""Markdown summary of asv results: one table per machine, for its latest (or a given) commit.

    python3 ci/summarize_asv.py asv_benches/results [--machine h100-sxm] [--commit SHA] [--out FILE]

Reads asv's own files (``benchmarks.json`` for units and parameter names, and
``<machine>/<commit>-<env>.json``). Skipped combinations (a backend missing here) are left out;
failed ones are listed as FAILED, and ``--fail-on-failed`` makes them the exit status.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path


def _load(path: Path):
    # asv writes NaN for skipped results; Python's json reads it.
    return json.loads(path.read_text())


def _fmt_time(s: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _fmt(value, unit: str) -> str:
    if unit == "seconds":
        return _fmt_time(value)
    if abs(value) >= 1e4 or (value != 0 and abs(value) < 1e-2):
        return f"{value:.3e} {unit}"
    return f"{value:.4g} {unit}"


def _result_files(machine_dir: Path):
    return [p for p in machine_dir.glob("*.json") if p.name != "machine.json"]


def summarize(results_dir: Path, machine: str | None = None, commit: str | None = None, note: str = ""):
    """Return (markdown, number_of_failed_results)."""
    benchmarks = _load(results_dir / "benchmarks.json")
    machines = [machine] if machine else sorted(
        p.name for p in results_dir.iterdir() if p.is_dir() and (p / "machine.json").exists())
    if not machines:
        raise SystemExit(f"no machine results under {results_dir}")
    out, failed = [], 0
    for m in machines:
        mdir = results_dir / m
        files = [(p, _load(p)) for p in _result_files(mdir)]
        if commit:
            files = [(p, d) for p, d in files if d["commit_hash"].startswith(commit)]
        if not files:
            raise SystemExit(f"no results for machine {m!r}" + (f" at commit {commit}" if commit else ""))
        latest_date = max(d.get("date", 0) for _, d in files)
        files = [(p, d) for p, d in files if d.get("date", 0) == latest_date]
        info = _load(mdir / "machine.json")
        for path, data in files:
            out.append(f"### {m} — commit {data['commit_hash'][:10]}")
            out.append("")
            desc = [info.get("cpu"), info.get("num_cpu") and f"{info['num_cpu']} CPUs",
                    info.get("ram") and f"{info['ram']} RAM", info.get("os")]
            out.append(", ".join(d for d in desc if d) + f"; environment `{data.get('env_name', '?')}`")
            out.append("")
            if note:
                out.extend([note, ""])
            out.append("| benchmark | parameters | result |")
            out.append("| --- | --- | ---: |")
            cols = data["result_columns"]
            for name in sorted(data["results"]):
                row = dict(zip(cols, data["results"][name]))
                meta = benchmarks.get(name, {})
                unit = meta.get("unit", "")
                names = meta.get("param_names", [])
                params = row.get("params") or []
                values = row.get("result")
                combos = list(itertools.product(*params)) if params else [()]
                if values is None:
                    values = [None] * len(combos)
                short = name.split(".", 1)[-1]
                for combo, value in zip(combos, values):
                    label = ", ".join(f"{k}={v.strip(chr(39))}" for k, v in zip(names, combo)) or "—"
                    if value is None:
                        failed += 1
                        out.append(f"| {short} | {label} | FAILED |")
                    elif isinstance(value, float) and math.isnan(value):
                        continue  # skipped: backend or size not available on this machine
                    else:
                        out.append(f"| {short} | {label} | {_fmt(value, unit)} |")
            out.append("")
    return "\n".join(out), failed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results_dir", type=Path)
    ap.add_argument("--machine")
    ap.add_argument("--commit", help="commit hash (prefix); default: the latest run per machine")
    ap.add_argument("--out", type=Path, help="write the Markdown here as well as to stdout")
    ap.add_argument("--note", default="", help="a paragraph to put under each machine's heading")
    ap.add_argument("--fail-on-failed", action="store_true", help="exit 1 when any result FAILED")
    args = ap.parse_args(argv)
    text, failed = summarize(args.results_dir, args.machine, args.commit, args.note)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 1 if (failed and args.fail_on_failed) else 0


if __name__ == "__main__":
    sys.exit(main())
