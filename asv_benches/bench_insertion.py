"""asv benchmarks for Fourier insertion (the gather insertion of cryo-EM reconstruction).

``time_insert``: one call of the registry case (``insertion_gather`` / ``insertion_scatter``):
padded particle spectra with CTFs into a resident half volume, box 32 / 128 / 256 at pad 2.
``track_particles_per_s``: particles inserted per second. ``track_fraction_of_copy_bandwidth``:
the fewest bytes a call moves over the copy ceiling of the backend's device.
``track_gather_over_scatter``: the scatter's time over the gather's on the same backend and
inputs (the thesis reports 2.1–6.0x on GPUs). ``track_slab_over_brick`` (GPU backends): the brick
layout's time over the slab layout's, the gather's two thread layouts.
``track_ratio_vs_torch_fourier_slice``: the time of
``torch_fourier_slice.insert_central_slices_rfft_3d`` (PyTorch trilinear scatter of rfft
half images; CPU tensors for CPU backends, CUDA tensors for GPU backends) over ours, the same
particles in the same process; > 1 means ours is faster.
"""

from __future__ import annotations

import numpy as np

from . import common

SIZES = ["small", "full", "box256"]


def _require(backend, size):
    """Skip sizes a backend does not run: box 256 is for GPUs, SPK_BENCH_SMALL keeps the small one."""
    common.require_backend(backend)
    common.skip_unless(backend in common.GPU_BACKENDS or size != "box256", "box 256 runs on GPUs only")
    if common.SMALL:
        common.skip_unless(size == "small", "SPK_BENCH_SMALL: small only")


class Insertion:
    params = (common.CPU_AND_GPU, SIZES, ["gather", "scatter"])
    param_names = ["backend", "size", "method"]
    timeout = 600

    def setup(self, backend, size, method):
        _require(backend, size)
        self.prep = common.prepared(f"insertion_{method}", backend, size, "float32")
        self.backend = backend

    def time_insert(self, backend, size, method):
        self.prep.run()
        common.sync(backend)

    def track_particles_per_s(self, backend, size, method):
        return common.rate(self.prep.run, self.prep.items, backend)

    track_particles_per_s.unit = "particles/s"

    def track_fraction_of_copy_bandwidth(self, backend, size, method):
        r = common.rate(self.prep.run, self.prep.bytes, backend)
        return common.fraction_of_ceiling(r, "copy", backend)

    track_fraction_of_copy_bandwidth.unit = "fraction"


class _Rival:
    """The rival case's time over ours (``ours``, ``rival``: registry case names), same inputs."""

    param_names = ["backend", "size"]
    timeout = 600
    ours = rival = ""

    def setup(self, backend, size):
        _require(backend, size)
        self.a = common.prepared(self.ours, backend, size, "float32")
        self.b = common.prepared(self.rival, backend, size, "float32")

    def _ratio(self, backend):
        ta = common.best_time(self.a.run, lambda: common.sync(backend), 3)
        tb = common.best_time(self.b.run, lambda: common.sync(backend), 3)
        return tb / ta


class GatherVsScatter(_Rival):
    params = (common.CPU_AND_GPU, SIZES)
    ours, rival = "insertion_gather", "insertion_scatter"

    def track_gather_over_scatter(self, backend, size):
        return self._ratio(backend)

    track_gather_over_scatter.unit = "x"


class SlabVsBrick(_Rival):
    params = (common.GPU_BACKENDS, SIZES)
    ours, rival = "insertion_gather", "insertion_gather_brick"

    def track_slab_over_brick(self, backend, size):
        return self._ratio(backend)

    track_slab_over_brick.unit = "x"


class VersusTorchFourierSlice:
    params = (common.CPU_AND_GPU, SIZES)
    param_names = ["backend", "size"]
    timeout = 600

    def setup(self, backend, size):
        _require(backend, size)
        try:
            import torch
            from torch_fourier_slice import insert_central_slices_rfft_3d
        except ImportError:
            common.skip("torch-fourier-slice (and torch) are not installed")
        from spkernels.bench.cases.insertion import _SIZES, inputs

        self.ours = common.prepared("insertion_gather", backend, size, "float32")
        box, n_cpu, n_gpu = _SIZES[size]
        gpu = backend in common.GPU_BACKENDS
        n = n_gpu if gpu else n_cpu
        if gpu and not torch.cuda.is_available():
            common.skip("torch has no CUDA here")
        dev = "cuda" if gpu else "cpu"
        img, _, rot = inputs(box, n)
        N = 2 * box
        half = np.ascontiguousarray(img[:, :, : N // 2 + 1])  # rfft-shaped images of the same particles
        self.img = torch.as_tensor(half, device=dev)
        self.rot = torch.as_tensor(rot, device=dev)
        self.shape = (N, N, N)
        self.fn = insert_central_slices_rfft_3d
        self.dev = dev
        self._peer()

    def _peer(self):
        self.fn(self.img, self.shape, self.rot)
        if self.dev == "cuda":
            import torch

            torch.cuda.synchronize()

    def track_ratio_vs_torch_fourier_slice(self, backend, size):
        t_peer = common.best_time(self._peer, None, 3)
        t_ours = common.best_time(self.ours.run, lambda: common.sync(backend), 3)
        return t_peer / t_ours

    track_ratio_vs_torch_fourier_slice.unit = "x"
