"""The built-in ``copy`` case through asv: the template a family's benchmark file follows.

Inputs come from the case registered in ``spkernels/bench/cases/copy.py`` (the same one that
``spkernels bench compare`` times), so asv and the CLI measure the same thing.
"""

from .common import CPU_AND_GPU, fraction_of_ceiling, prepared, rate, size_allowed, skip_unless, sync


class Copy:
    """Array copy: library memcpy (cpu, cuda) against a Numba loop (numba-cpu, numba-cuda)."""

    params = (CPU_AND_GPU, ["small", "full"], ["float32"])
    param_names = ["backend", "size", "precision"]
    timeout = 300

    def setup(self, backend, size, precision):
        skip_unless(size_allowed(backend, size), "full size runs on GPU backends only")
        self.case = prepared("copy", backend, size, precision)  # skips unavailable backends; warms up

    def time_copy(self, backend, size, precision):
        self.case.run()
        sync(backend)

    def track_bandwidth(self, backend, size, precision):
        return rate(self.case.run, self.case.bytes, backend) / 1e9

    track_bandwidth.unit = "GB/s"

    def track_fraction_of_copy_ceiling(self, backend, size, precision):
        return fraction_of_ceiling(rate(self.case.run, self.case.bytes, backend), "copy", backend)

    track_fraction_of_copy_ceiling.unit = "fraction of copy ceiling"

    def track_ratio_vs_numba(self, backend, size, precision):
        """Time of the Numba twin over this backend's time (C++ backends only; above 1: C++ wins)."""
        peer = {"cpu": "numba-cpu", "cuda": "numba-cuda"}.get(backend)
        skip_unless(peer is not None, "ratio is reported on the C++ backends")
        twin = prepared("copy", peer, size, precision)
        return rate(self.case.run, 1.0, backend) / rate(twin.run, 1.0, peer)

    track_ratio_vs_numba.unit = "t(numba)/t(C++)"
