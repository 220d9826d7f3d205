"""``spkernels bench``: compare C++ and Numba backends, list cases, show ceilings and machine name."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_compare(args) -> int:
    from . import compare

    def progress(msg):
        if not args.quiet:
            print(f"  timing {msg} ...", file=sys.stderr, flush=True)

    rows = compare.run_compare(args.kernel, args.size, args.precision, args.backend,
                               repeat=args.repeat, min_time=args.min_time, progress=progress,
                               fresh_ceilings=not args.reuse_ceilings)
    ceil = compare.ceilings_for(rows)
    print(compare.format_table(rows, ceil))
    if args.out:
        paths = compare.write_outputs(rows, args.out, ceil)
        print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    errors = [r for r in rows if r.status.startswith("ERROR")]
    if errors:
        print(f"{len(errors)} measurement(s) failed", file=sys.stderr)
        return 1
    if not any(r.status == "ok" for r in rows):
        print("no backend could be timed here", file=sys.stderr)
        return 1
    return 0


def _cmd_list(args) -> int:
    from .registry import cases

    for name, case in cases().items():
        sizes = ", ".join(f"{s} ({case.size_help[s]})" if s in case.size_help else s for s in case.sizes)
        print(f"{name}: {case.description}\n  sizes: {sizes}\n  precisions: {', '.join(case.precisions)}; "
              f"ceiling: {case.ceiling}; backends: {', '.join(case.backends)}")
    return 0


def _cmd_ceilings(args) -> int:
    from . import ceilings

    out = {}
    for dev in args.device or ["cpu", "gpu"]:
        try:
            out[dev] = ceilings.measure(dev) if args.fresh else ceilings.get(dev)
            if args.fresh:
                ceilings.store(dev, out[dev])
        except NotImplementedError as exc:
            out[dev] = {"unavailable": str(exc)}
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    for dev, c in out.items():
        if "unavailable" in c:
            print(f"{dev}: unavailable ({c['unavailable']})")
            continue
        for kind in ceilings.KINDS:
            v = c.get(kind)
            unit = "GFLOP/s" if kind.startswith("gemm") else "GB/s (read+write)"
            shown = f"{v / 1e9:.1f} {unit}" if v else "unavailable"
            print(f"{dev} {kind:13s}: {shown}   [{c['details'].get(kind, '')}]")
    return 0


def _cmd_machine(args) -> int:
    from .machine import machine_name

    print(machine_name())
    return 0


def add_parser(subparsers) -> None:
    """Register ``spkernels bench`` and its subcommands on the main CLI's `subparsers`."""
    p = subparsers.add_parser("bench", help="benchmarks: C++ vs Numba comparison, ceilings, machine name")
    sub = p.add_subparsers(dest="bench_command", required=True)

    c = sub.add_parser("compare", help="time CUDA C++ vs Numba CUDA and C++ CPU vs Numba CPU per kernel",
                       description=__import__("spkernels.bench.compare", fromlist=["x"]).__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--kernel", action="append", help="registered kernel (repeatable; default all; see `bench list`)")
    c.add_argument("--size", action="append", help="named size (repeatable; default each kernel's smallest)")
    c.add_argument("--precision", action="append", help="dtype name (repeatable; default all the kernel has)")
    c.add_argument("--backend", action="append", choices=["cuda", "numba-cuda", "cpu", "numba-cpu"],
                   help="restrict backends (repeatable; default all four)")
    c.add_argument("--out", metavar="DIR", help="also write compare.md, compare.json and compare.png here")
    c.add_argument("--repeat", type=int, default=5, help="timed samples per backend (median reported)")
    c.add_argument("--min-time", type=float, default=0.05, help="seconds per timed sample (calls are batched)")
    c.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    c.add_argument("--reuse-ceilings", action="store_true",
                   help="use ceilings cached by an earlier run (default: measure them first)")
    c.set_defaults(func=_cmd_compare)

    ls = sub.add_parser("list", help="registered benchmark cases")
    ls.set_defaults(func=_cmd_list)

    ce = sub.add_parser("ceilings", help="this machine's GEMM rate and copy bandwidth")
    ce.add_argument("--device", action="append", choices=["cpu", "gpu"], help="default: cpu and gpu")
    ce.add_argument("--fresh", action="store_true", help="measure now instead of using the cache")
    ce.add_argument("--json", action="store_true")
    ce.set_defaults(func=_cmd_ceilings)

    m = sub.add_parser("machine", help="the machine name benchmark results are filed under")
    m.set_defaults(func=_cmd_machine)
