"""This machine's ceilings, measured in the same asv run as the kernels.

GEMM FLOP/s (NumPy's BLAS on the CPU, cuBLAS through CuPy on the GPU) and copy bandwidth
(read + written bytes/s: memcpy or a parallel Numba loop on the CPU, cudaMemcpy
device-to-device on the GPU). ``setup_cache`` goes through the shared ceilings file
(:mod:`spkernels.bench.ceilings`): whichever benchmark of the run needs a ceiling first
measures it (asv runs ``time_*`` benchmarks before the others, so that may be a kernel's
``track_fraction_*``), and everyone else, these ``track_*`` included, reads the same value.
``ci/asv-run.sh`` starts every run with a fresh file, so all values come from that run.
"""

from spkernels.bench import ceilings

from .common import skip


def _measure(kinds):
    out = {}
    for device in ceilings.DEVICES:
        try:
            out[device] = ceilings.get(device, kinds=kinds)
        except NotImplementedError as exc:
            out[device] = {"unavailable": str(exc)}
    return out


def _value(cache, device, kind):
    entry = cache[device]
    if "unavailable" in entry:
        skip(entry["unavailable"])
    if not entry.get(kind):
        skip(entry.get("details", {}).get(kind, f"{kind} not measured"))
    return entry[kind]


class GemmCeiling:
    """Dense matrix product rate, float32 and float64."""

    params = (["cpu", "gpu"], ["float32", "float64"])
    param_names = ["device", "dtype"]
    timeout = 600

    def setup_cache(self):
        return _measure(("gemm_float32", "gemm_float64"))

    def setup(self, cache, device, dtype):
        _value(cache, device, f"gemm_{dtype}")

    def track_gemm_rate(self, cache, device, dtype):
        return _value(cache, device, f"gemm_{dtype}") / 1e9

    track_gemm_rate.unit = "GFLOP/s"


class CopyCeiling:
    """Large-copy bandwidth, bytes read plus bytes written."""

    params = (["cpu", "gpu"],)
    param_names = ["device"]
    timeout = 600

    def setup_cache(self):
        return _measure(("copy",))

    def setup(self, cache, device):
        _value(cache, device, "copy")

    def track_copy_bandwidth(self, cache, device):
        return _value(cache, device, "copy") / 1e9

    track_copy_bandwidth.unit = "GB/s"
