"""``spkernels bench compare``: C++ against Numba, per kernel, on this machine, in one run.

For each registered case (:mod:`spkernels.bench.registry`), size and precision, every backend
is prepared (inputs on its device, JIT and plans warmed up), timed with device
synchronisation, and reported as time, throughput and fraction of this machine's measured
ceiling. The pairs in :data:`~spkernels.bench.registry.PEERS` get a ratio column:
``numba/C++`` is the Numba twin's time over the hand-written C++ time (above 1: C++ is faster).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import backends as _backends
from .._errors import BackendUnavailableError
from . import ceilings as _ceilings
from .machine import machine_name
from .registry import PEERS, cases, get
from .timing import device_synchronizer, is_gpu_backend, median_time

log = logging.getLogger("spkernels.bench.compare")

__all__ = ["Row", "run_compare", "format_table", "plot", "write_outputs"]


@dataclass
class Row:
    """One (kernel, size, precision, backend) measurement; `status` is "ok" or why it is missing."""

    kernel: str
    size: str
    precision: str
    backend: str
    status: str = "ok"
    seconds: float | None = None
    throughput: float | None = None  # in `throughput_unit`
    throughput_unit: str = ""
    items_per_s: float | None = None
    item_unit: str = ""
    fraction: float | None = None  # of `ceiling_kind` on this device
    ceiling_kind: str = ""
    numba_over_cpp: float | None = None  # t(numba twin) / t(C++), on both rows of a pair


def _ceiling_fraction(case, precision, backend, prep, seconds):
    kind = case.ceiling_kind(precision)
    work = prep.flops if kind.startswith("gemm_") else prep.bytes
    if not work:
        return kind, None
    try:
        return kind, _ceilings.fraction(work / seconds, kind, "gpu" if is_gpu_backend(backend) else "cpu")
    except NotImplementedError as exc:
        log.info("no %s ceiling for %s: %s", kind, backend, exc)
        return kind, None


def _measure(case, size, precision, backend, repeat, min_time) -> Row:
    row = Row(case.name, size, precision, backend)
    if backend not in case.backends:
        row.status = "not implemented"
        return row
    try:
        prep = case.prepare(backend, size, precision)
        sync = device_synchronizer() if is_gpu_backend(backend) else None
        t = median_time(prep.run, sync=sync, repeat=repeat, min_time=min_time)
    except BackendUnavailableError as exc:
        why = str(exc).split(". Usable backends")[0]
        row.status = "unavailable: " + why.split(" is unavailable: ", 1)[-1]
        return row
    except NotImplementedError as exc:
        row.status = "skipped: " + (str(exc) or "not implemented")
        return row
    except Exception as exc:  # one broken backend must not hide the others' numbers
        log.exception("%s %s %s %s failed", case.name, size, precision, backend)
        row.status = f"ERROR: {type(exc).__name__}: {exc}"
        return row
    row.seconds = t
    if prep.flops:
        row.throughput, row.throughput_unit = prep.flops / t / 1e9, "GFLOP/s"
    elif prep.bytes:
        row.throughput, row.throughput_unit = prep.bytes / t / 1e9, "GB/s"
    if prep.items:
        row.items_per_s, row.item_unit = prep.items / t, prep.item_unit
    row.ceiling_kind, row.fraction = _ceiling_fraction(case, precision, backend, prep, t)
    return row


def _measure_ceilings(chosen, precisions, wanted_backends, progress) -> None:
    """Measure now the ceilings this comparison divides by, so they come from the same run."""
    kinds = sorted({c.ceiling_kind(p) for c in chosen for p in (precisions or c.precisions) if p in c.precisions})
    for dev in ("cpu", "gpu"):
        if not any(is_gpu_backend(b) == (dev == "gpu") for b in wanted_backends):
            continue
        if dev == "gpu" and not any(_backends.is_available(b) for b in _backends.GPU_BACKENDS):
            continue
        if progress:
            progress(f"{dev} ceilings ({', '.join(kinds)})")
        try:
            _ceilings.store(dev, _ceilings.measure(dev, kinds=kinds))
        except NotImplementedError as exc:
            log.info("no %s ceilings: %s", dev, exc)


def run_compare(kernels=None, sizes=None, precisions=None, backends=None, *, repeat: int = 5,
                min_time: float = 0.05, progress=None, fresh_ceilings: bool = True) -> list[Row]:
    """Measure every requested combination; see the module docstring.

    Parameters
    ----------
    kernels, sizes, precisions, backends : sequence of str, optional
        Restrict the run; default: every registered kernel, the first (smallest) size of each,
        every precision, and the four non-reference backends.
    repeat, min_time
        Passed to :func:`spkernels.bench.timing.median_time`.
    progress : callable, optional
        Called with a short string before each measurement.
    fresh_ceilings : bool
        Measure the ceilings first (default), rather than reuse ones cached by an earlier
        process (:func:`spkernels.bench.ceilings.get`).
    """
    names = list(kernels) if kernels else list(cases())
    chosen = [get(n) for n in names]
    wanted_backends = list(backends) if backends else [b for pair in PEERS for b in pair]
    plan = []
    for case in chosen:  # validate everything before spending time on ceilings
        case_sizes = [s for s in (sizes or case.sizes[:1]) if s in case.sizes]
        if sizes and not case_sizes:
            raise ValueError(f"`size` {', '.join(sizes)} not defined for {case.name!r}; "
                             f"its sizes: {', '.join(case.sizes)}")
        plan.append((case, case_sizes))
    if fresh_ceilings:
        _measure_ceilings(chosen, precisions, wanted_backends, progress)
    rows: list[Row] = []
    for case, case_sizes in plan:
        for size in case_sizes:
            for precision in [p for p in (precisions or case.precisions) if p in case.precisions]:
                group = []
                for backend in wanted_backends:
                    if progress:
                        progress(f"{case.name} {size} {precision} {backend}")
                    group.append(_measure(case, size, precision, backend, repeat, min_time))
                by_backend = {r.backend: r for r in group}
                for cpp, numba in PEERS:
                    a, b = by_backend.get(cpp), by_backend.get(numba)
                    if a and b and a.seconds and b.seconds:
                        a.numba_over_cpp = b.numba_over_cpp = b.seconds / a.seconds
                rows.extend(group)
    return rows


def _fmt_time(s):
    if s is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def format_table(rows: list[Row], ceilings_by_device: dict | None = None) -> str:
    """A Markdown table of `rows`, with a header naming the machine and its ceilings."""
    lines = [f"machine: {machine_name()}"]
    for dev, c in (ceilings_by_device or {}).items():
        parts = []
        for kind in _ceilings.KINDS:
            v = c.get(kind)
            if v:
                parts.append(f"{kind} {v / 1e9:.1f} {'GFLOP/s' if kind.startswith('gemm') else 'GB/s'}")
        lines.append(f"{dev} ceilings: " + ("; ".join(parts) or "not measured"))
    lines.append("")
    lines.append("| kernel | size | precision | backend | time | throughput | items/s | fraction of ceiling | numba/C++ time |")
    lines.append("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        if r.status != "ok":
            lines.append(f"| {r.kernel} | {r.size} | {r.precision} | {r.backend} | {r.status} | | | | |")
            continue
        thr = f"{r.throughput:.3g} {r.throughput_unit}" if r.throughput is not None else "—"
        ips = f"{r.items_per_s:.3g} {r.item_unit}/s" if r.items_per_s is not None else "—"
        frac = f"{100 * r.fraction:.1f}% of {r.ceiling_kind}" if r.fraction is not None else "—"
        ratio = f"{r.numba_over_cpp:.2f}" if r.numba_over_cpp is not None else "—"
        lines.append(f"| {r.kernel} | {r.size} | {r.precision} | {r.backend} | {_fmt_time(r.seconds)} | "
                     f"{thr} | {ips} | {frac} | {ratio} |")
    return "\n".join(lines)


_COLOURS = {"cuda": "#1f77b4", "numba-cuda": "#aec7e8", "cpu": "#d62728", "numba-cpu": "#ff9896"}


def plot(rows: list[Row], path) -> Path:
    """Bar chart of `rows` (time, and fraction of ceiling) as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys((r.kernel, r.size, r.precision) for r in rows))
    order = list(dict.fromkeys(r.backend for r in rows if r.seconds is not None))  # timed backends only
    width = 0.8 / max(1, len(order))
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 2.2 * len(groups) + 4), 4.5))
    for k, backend in enumerate(order):
        xs, ts, fs, fx = [], [], [], []
        for g, key in enumerate(groups):
            r = next((r for r in rows if (r.kernel, r.size, r.precision) == key and r.backend == backend), None)
            if r is None or r.seconds is None:
                continue
            xs.append(g + (k - (len(order) - 1) / 2) * width)
            ts.append(r.seconds * 1e3)
            if r.fraction is not None:
                fx.append(xs[-1])
                fs.append(100 * r.fraction)
        colour = _COLOURS.get(backend)
        axes[0].bar(xs, ts, width, label=backend, color=colour)
        axes[1].bar(fx, fs, width, label=backend, color=colour)
    labels = [f"{k}\n{s} {p}" for k, s, p in groups]
    for ax in axes:
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(labels, fontsize=8)
    axes[0].set_ylabel("time per call (ms, log)")
    if any(r.seconds for r in rows):
        axes[0].set_yscale("log")
    axes[1].set_ylabel("% of measured ceiling")
    axes[0].set_title("time (lower is better)")
    axes[1].set_title("fraction of ceiling (higher is better)")
    if order:
        axes[0].legend(fontsize=8)
    else:
        axes[0].text(0.5, 0.5, "no backend could be timed", ha="center", transform=axes[0].transAxes)
    fig.suptitle(f"spkernels bench compare — {machine_name()}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(rows: list[Row], out_dir, ceilings_by_device: dict) -> dict:
    """Write ``compare.md``, ``compare.json`` and (with matplotlib) ``compare.png`` under `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "compare.md"
    md.write_text(format_table(rows, ceilings_by_device) + "\n")
    js = out / "compare.json"
    clean = {dev: {k: v for k, v in c.items()} for dev, c in ceilings_by_device.items()}
    js.write_text(json.dumps({"machine": machine_name(), "ceilings": clean,
                              "rows": [asdict(r) for r in rows]}, indent=1,
                             default=lambda x: None if isinstance(x, float) and math.isnan(x) else str(x)))
    paths = {"markdown": md, "json": js}
    try:
        paths["png"] = plot(rows, out / "compare.png")
    except ImportError:  # matplotlib is optional: the table and JSON still stand
        log.warning("matplotlib is not installed: no compare.png")
    return paths


def ceilings_for(rows: list[Row]) -> dict:
    """The ceilings behind `rows`' fractions, per device used (from the per-process cache)."""
    out = {}
    for dev in ("cpu", "gpu"):
        if any((is_gpu_backend(r.backend) == (dev == "gpu")) and r.status == "ok" for r in rows):
            try:
                out[dev] = _ceilings.get(dev)
            except NotImplementedError:
                pass
    return out
