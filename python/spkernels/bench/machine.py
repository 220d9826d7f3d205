"""Machine names for benchmark results: the GPU model when there is one, else the CPU core count.

asv keeps one results folder per machine name, so the name must say what the numbers depend
on. Results from an H100 SXM and an H100 PCIe differ by a third (HBM3 vs HBM2e, 700 W vs
350 W), so the name carries the form factor where the driver reports it.

``python -m spkernels.bench.machine`` prints the name (``ci/machine-name.sh`` calls it).
``SPK_MACHINE`` overrides the detection.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

__all__ = ["gpu_names", "machine_name", "slug_for_gpu", "cpu_count"]


def cpu_count() -> int:
    """CPU cores this process may run on (the affinity mask, not the socket's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def gpu_names() -> list[str]:
    """Marketing names of the visible NVIDIA GPUs, e.g. ``['NVIDIA H100 80GB HBM3']``.

    Asks ``nvidia-smi`` first (no CUDA context, works before spkernels is built), then the
    compiled core. An empty list means no GPU could be seen.
    """
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30, check=True,
            ).stdout
            names = [line.strip() for line in out.splitlines() if line.strip()]
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            if names and visible is not None and visible.strip() != "":
                idx = [int(v) for v in visible.split(",") if v.strip().isdigit()]
                names = [names[i] for i in idx if i < len(names)] or names
            if names:
                return names
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    try:
        from ..backends import core

        mod = core()
        if mod is not None and mod.cuda_device_count() > 0:
            return [mod.cuda_device_properties(i)["name"] for i in range(mod.cuda_device_count())]
    except Exception:  # a broken driver must not stop a CPU benchmark run from being named
        pass
    return []


# (pattern on the lower-cased name, slug); first match wins, so specific forms come first.
_GPU_SLUGS = (
    (r"h100.*pcie", "h100-pcie"),
    (r"h100.*nvl", "h100-nvl"),
    (r"h100", "h100-sxm"),  # 'H100 80GB HBM3' is the SXM part; PCIe and NVL say so
    (r"h200.*nvl", "h200-nvl"),
    (r"h200", "h200"),
    (r"b200", "b200"),
    (r"a100.*pcie", "a100-pcie"),
    (r"a100", "a100"),
    (r"l40s", "l40s"),
    (r"l40", "l40"),
    (r"l4\b", "l4"),
    (r"a10\b", "a10"),
    (r"v100", "v100"),
)


def slug_for_gpu(name: str) -> str:
    """Short, stable slug for a GPU name: ``'NVIDIA H100 PCIe'`` → ``'h100-pcie'``."""
    low = name.lower()
    if "gh200" in low:
        return "gh200"
    for pattern, slug in _GPU_SLUGS:
        if re.search(pattern, low):
            return slug
    while True:  # 'NVIDIA GeForce RTX 4090' -> 'rtx-4090'
        stripped = re.sub(r"^(nvidia|tesla|geforce|quadro)\s+", "", low)
        if stripped == low:
            break
        low = stripped
    return re.sub(r"[^a-z0-9]+", "-", low).strip("-") or "gpu"


def machine_name() -> str:
    """Name under which this machine's benchmark results are filed.

    ``SPK_MACHINE`` if set; else the first visible GPU's slug (benchmarks use device 0);
    else ``cpu-<n>core`` with n the usable CPU cores.
    """
    forced = os.environ.get("SPK_MACHINE", "").strip()
    if forced:
        return forced
    names = gpu_names()
    if names:
        return slug_for_gpu(names[0])
    return f"cpu-{cpu_count()}core"


if __name__ == "__main__":
    print(machine_name())
