"""``spkernels tune``: search the tuning spaces on this machine, store the best, show or clear them.

``spkernels tune [FAMILY ...] [--backend B] [--size small|medium|large] [--budget SECONDS]``
tunes the named families (default: all) on the named backend (default: every usable one but
``numpy``), sharing the budget evenly between the problems, with a progress bar over the
candidates, and prints a table (configuration, time, speed-up over the default). Families
without knobs on a backend are listed as such. ``--show`` lists the stored results of this
machine and build, ``--clear`` removes them (of the named families, or all).
"""

from __future__ import annotations

import json
import sys

from . import cache

__all__ = ["add_parser", "tune_problem", "run", "format_table", "summary"]


def _fmt_config(cfg: dict) -> str:
    if not cfg:
        return "-"
    parts = []
    for k, v in cfg.items():
        if isinstance(v, (list, tuple)):
            v = "x".join(str(x) for x in v)
        parts.append(f"{k}={v}")
    return " ".join(parts)


def tune_problem(problem, *, budget_s=None, max_configs=None, seed=0, repeat=3, store=True, progress=None):
    """Search one :class:`~spkernels.tuning.families.Problem` and store the result in the cache.

    Returns the :class:`~spkernels.tuning.search.TuneResult` (None for an empty space).
    """
    from .search import tune

    if problem.space.empty:
        return None
    res = tune(problem.space, problem.runner, ctx=problem.ctx, compare=problem.compare, budget_s=budget_s,
               max_configs=max_configs, seed=seed, repeat=repeat, progress=progress)
    if store:
        cache.store(problem.family, problem.backend, problem.precision, problem.size_class, res.best,
                    time_s=res.best_time_s, default_time_s=res.default_time_s, speedup=res.speedup,
                    tried=len(res.trials), rejected=len(res.rejected), strategy=res.strategy, stopped=res.stopped,
                    n_valid=res.n_valid, problem=problem.label)
    return res


def run(families, backends, size="small", budget_s=60.0, seed=0, repeat=3, store=True, bar=True,
        deterministic=True):
    """Tune every (family, backend) pair; returns rows ``(problem, result or None, error or None)``.

    `deterministic` (default): only knobs that keep each kernel deterministic by design
    (:func:`spkernels.tuning.families.space`)."""
    from .. import backends as _backends
    from .._errors import BackendUnavailableError
    from . import families as _fam

    work = []
    rows = []
    for be in backends:
        for fam in families:
            try:
                probs = _fam.problems(fam, be, size, seed=seed, deterministic=deterministic)
            except BackendUnavailableError as exc:
                rows.append((_fam.Problem(fam, be, "-", "-", _fam.space(fam, be) if be in _backends.BACKENDS else None,
                                          {}, None, None, f"{fam} on {be}"), None, f"unavailable: {exc}"))
                continue
            work.extend(probs)
    tunable = [p for p in work if not p.space.empty]
    total = sum(len(p.space.configs(p.ctx)) for p in tunable)
    pbar = None
    if bar and tunable:
        from tqdm.auto import tqdm

        pbar = tqdm(total=total, desc="tune", unit="config", file=sys.stderr)
    share = None if budget_s is None else float(budget_s) / max(1, len(tunable))
    try:
        for p in work:
            if p.space.empty:
                rows.append((p, None, None))
                continue
            if pbar is not None:
                pbar.set_postfix_str(f"{p.family}/{p.backend}")
            n_valid = len(p.space.configs(p.ctx))
            done = [0]

            def tick(trial, pbar=pbar, done=done):
                done[0] += 1
                if pbar is not None:
                    pbar.update(1)

            try:
                res = tune_problem(p, budget_s=share, seed=seed, repeat=repeat, store=store, progress=tick)
                rows.append((p, res, None))
            except Exception as exc:  # noqa: BLE001 (one failing problem must not stop the others)
                rows.append((p, None, f"{type(exc).__name__}: {exc}"))
            if pbar is not None and done[0] < n_valid:
                pbar.update(n_valid - done[0])  # candidates the budget skipped
    finally:
        if pbar is not None:
            pbar.close()
    return rows


def format_table(rows) -> str:
    """The result table: family, backend, size class, configuration, time, default time, speed-up."""
    head = ("family", "backend", "size class", "configuration", "time", "default", "speed-up", "tried")
    lines = []
    for p, res, err in rows:
        if err is not None:
            lines.append((p.family, p.backend, p.size_class, err, "", "", "", ""))
        elif res is None:
            note = p.space.note or "no knob"
            lines.append((p.family, p.backend, "-", note if note.startswith("no knob") else f"no knob: {note}", "", "",
                          "", ""))
        else:
            rej = f" ({len(res.rejected)} rejected)" if res.rejected else ""
            lines.append((p.family, p.backend, p.size_class, _fmt_config(res.best), f"{res.best_time_s * 1e3:.2f} ms",
                          f"{res.default_time_s * 1e3:.2f} ms", f"{res.speedup:.2f}x",
                          f"{len(res.trials)}/{res.n_valid}{rej}"))
    widths = [max(len(str(r[i])) for r in [head] + lines) for i in range(len(head))]
    out = ["  ".join(str(h).ljust(w) for h, w in zip(head, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in lines]
    return "\n".join(out)


def summary() -> dict:
    """What ``spkernels info`` shows: the cache file, whether tuning is on, this machine's entries."""
    ents = cache.entries()
    fams = sorted({k.split("|")[2] for k in ents})
    return {"cache": str(cache.cache_path()), "enabled": cache.enabled(), "machine": cache.machine(),
            "entries": len(ents), "families": fams}


def _cmd_tune(args) -> int:
    from .. import backends as _backends
    from . import families as _fam

    fams = list(args.families or _fam.FAMILIES)
    for f in fams:
        if f not in _fam.FAMILIES:
            raise ValueError(f"unknown family {f!r}; choose from {', '.join(_fam.FAMILIES)}")
    if args.clear:
        n = sum(cache.clear(f) for f in fams) if args.families else cache.clear()
        print(f"removed {n} tuned configuration(s) of {cache.machine()} from {cache.cache_path()}")
        return 0
    if args.show:
        ents = cache.entries(all_machines=args.all)
        if args.families:
            ents = {k: v for k, v in ents.items() if k.split("|")[2] in fams}
        if args.json:
            print(json.dumps(ents, indent=1, sort_keys=True))
            return 0
        print(f"{cache.cache_path()}: {len(ents)} tuned configuration(s)"
              f"{'' if args.all else ' for ' + cache.machine()}{'' if cache.enabled() else ' (SPK_TUNING=off: unused)'}")
        for k, rec in sorted(ents.items()):
            sp = rec.get("speedup")
            sp = f"{sp:.2f}x" if isinstance(sp, (int, float)) else "?"
            print(f"  {k}: {_fmt_config(rec.get('config', {}))}  ({sp} over default, {rec.get('created', '?')})")
        return 0
    if args.backend is not None:
        if args.backend not in _backends.BACKENDS:
            raise ValueError(f"unknown backend {args.backend!r}; choose from {', '.join(_backends.BACKENDS)}")
        _backends.resolve(args.backend)  # BackendUnavailableError (one line, exit 2) when it cannot run here
        bes = [args.backend]
    else:
        bes = _fam.tunable_backends()
    if args.budget is not None and not args.budget >= 0:
        raise ValueError(f"--budget must be >= 0 seconds, got {args.budget}")
    rows = run(fams, bes, size=args.size, budget_s=args.budget, seed=args.seed, repeat=args.repeat,
               store=not args.dry_run, bar=not args.no_progress, deterministic=not args.nondeterministic)
    print(format_table(rows))
    if not args.dry_run:
        print(f"\nstored in {cache.cache_path()} (machine {cache.machine()}); kernels use them from now on"
              + ("" if cache.enabled() else " once SPK_TUNING is no longer off"))
    return 1 if any(err and not err.startswith("unavailable") for _, _, err in rows) else 0


def add_parser(subparsers) -> None:
    """Register ``spkernels tune`` on the main CLI's `subparsers`."""
    from . import families as _fam

    p = subparsers.add_parser("tune", help="autotune the kernels' launch parameters on this machine",
                              description=__doc__)
    p.add_argument("families", nargs="*", metavar="FAMILY", help=f"families to tune ({', '.join(_fam.FAMILIES)}; "
                                                                  "default all)")
    p.add_argument("--backend", default=None, help="one backend (default: every usable one but numpy)")
    p.add_argument("--size", default="small", choices=_fam.SIZES, help="problem size class to tune (default small)")
    p.add_argument("--budget", type=float, default=60.0, help="seconds for the whole search (default 60), shared "
                                                              "evenly between the problems")
    p.add_argument("--repeat", type=int, default=3, help="timing samples per configuration (median; default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the inputs and of the random search order")
    p.add_argument("--dry-run", action="store_true", help="search and print, but store nothing")
    p.add_argument("--nondeterministic", action="store_true",
                   help="also try knobs whose results depend on thread count or timing (the NUFFT's scatter "
                        "spreading; checked within eps)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--show", action="store_true", help="list the stored configurations of this machine")
    p.add_argument("--all", action="store_true", help="with --show: every machine's entries in the file")
    p.add_argument("--json", action="store_true", help="with --show: JSON output")
    p.add_argument("--clear", action="store_true", help="remove this machine's stored configurations")
    p.set_defaults(func=_cmd_tune)
