"""``spkernels.info()``: what was compiled, which GPUs are visible, which backends are usable."""

from __future__ import annotations

import os

from . import backends as _backends


def info() -> dict:
    """Describe this installation.

    Returns
    -------
    dict
        ``version``; ``core`` (the extension's build info, or None when it is missing:
        whether CUDA was compiled, its version and architectures, OpenMP, compiler, kernel
        families); ``gpus`` (name, compute capability, memory of each visible device);
        ``backends`` (usable names in ``auto`` order) and ``unavailable`` (name → reason);
        ``cpu_threads``; ``numba`` and ``cupy`` versions when installed; ``tuning`` (the tuning
        cache file, whether tuning is on, this machine's tuned configurations).
    """
    from . import __version__

    core = _backends.core()
    out: dict = {"version": __version__, "core": None, "gpus": []}
    if core is not None:
        out["core"] = dict(core.build_info())
        if out["core"]["cuda"]:
            try:
                out["gpus"] = [dict(core.cuda_device_properties(i)) for i in range(core.cuda_device_count())]
            except RuntimeError as exc:
                out["gpu_error"] = str(exc)
    out["backends"] = _backends.available_backends()
    out["unavailable"] = {
        b: _backends._why_unavailable(b) for b in _backends.BACKENDS if not _backends.is_available(b)
    }
    out["cpu_threads"] = out["core"]["cpu_threads"] if out["core"] else (os.cpu_count() or 1)
    for mod in ("numba", "cupy"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    out["cuda_simulator"] = _backends.cuda_simulator()
    try:
        from .tuning.cli import summary

        out["tuning"] = summary()
    except Exception as exc:  # noqa: BLE001 (a broken cache must not break `spkernels info`)
        out["tuning"] = {"error": str(exc)}
    return out


def format_info(d: dict) -> str:
    """Human-readable rendering of :func:`info` for the CLI."""
    lines = [f"spkernels {d['version']}"]
    core = d["core"]
    if core is None:
        lines.append("  compiled core : MISSING (spkernels._core not importable)")
    else:
        cuda = (
            f"yes (CUDA {core['cuda_version']}, sm {','.join(core['cuda_architectures'])})"
            if core["cuda"]
            else "no"
        )
        lines.append(f"  compiled core : {core['compiler']}; OpenMP {'yes' if core['openmp'] else 'no'}")
        lines.append(f"  CUDA compiled : {cuda}")
        lines.append(f"  kernel families: {', '.join(core['families'])}")
    if d["gpus"]:
        for g in d["gpus"]:
            cc = ".".join(map(str, g["compute_capability"]))
            lines.append(f"  GPU {g['index']}        : {g['name']} (sm {cc}, {g['total_memory'] / 2**30:.1f} GiB)")
    else:
        lines.append("  GPUs          : none visible")
    lines.append(f"  backends      : {', '.join(d['backends'])}")
    for b, why in d["unavailable"].items():
        lines.append(f"    {b:<11} unavailable: {why}")
    lines.append(f"  CPU threads   : {d['cpu_threads']}")
    lines.append(f"  numba {d['numba'] or 'missing'}, cupy {d['cupy'] or 'not installed'}")
    t = d.get("tuning") or {}
    if "error" in t:
        lines.append(f"  tuning        : cache unreadable ({t['error']})")
    elif t:
        state = "" if t["enabled"] else " (SPK_TUNING=off: kernels use their defaults)"
        what = (f"{t['entries']} tuned configuration(s) for {t['machine']} ({', '.join(t['families'])})"
                if t["entries"] else f"no tuned configurations for {t['machine']} (run `spkernels tune`)")
        lines.append(f"  tuning        : {what} in {t['cache']}{state}")
    return "\n".join(lines)
