"""The GPU MTIP path: one generation stays on the device, and gives the CPU backend's result.

Runs ``reconstruct(backend="numba-cuda")`` under Numba's CUDA simulator (marker
``numba_cuda``: the simulator run of ``test_numba_cuda_simulator`` picks it up; on a GPU
machine it runs for real) at a tiny size, twice:

- plainly (the simulator's device memory is host memory, so the pipeline computes in NumPy):
  the result must equal ``numba-cpu``'s to rounding;
- with :mod:`_fakecupy` standing in for CuPy as the backend's array module: every step then
  computes on "device" arrays that refuse implicit host conversion, and every host↔device
  crossing is counted. Counting two reference-batch sizes proves no per-batch round trip:
  the crossings of a generation must not depend on how many batches it slices.
"""

import numpy as np
import pytest

import _fakecupy
from spkernels import backends
from spkernels.geometry import Beam, Detector, random_orientations
from spkernels.mtip import simulate
from spkernels.mtip.density import GaussianDensity
from spkernels.mtip.phasing import PhasingSchedule
from spkernels.mtip.reconstruct import MTIPConfig, SPIData, Stage, grid_size, match_orientations, reconstruct

pytestmark = pytest.mark.numba_cuda

N_IMAGES = 24
N_REFS = 24


@pytest.fixture(scope="module")
def data():
    return _make_data()


def _make_data():
    """24 images of a 12-blob particle on an 8 x 8 detector (also used by test_cuda_host)."""
    rng = np.random.default_rng(5)
    pts = rng.uniform(-1, 1, (12, 3)) * np.array([16.0, 11.0, 8.0])
    particle = GaussianDensity(pts, np.full(12, 40.0), np.full(12, 300.0))
    ds = simulate(N_IMAGES, particle, Detector(8, 0.2, width=0.08), Beam(4600.0, 3e14, 1e-7), seed=2,
                  density_grid=None)
    return SPIData.from_dataset(ds)


def _config(backend, batch):
    # Two generations of one stage: the first merges from random orientations, the second
    # slices, matches (references, current orientations, local candidates) and merges again.
    return MTIPConfig(seed=4, particle_diameter=40.0, stages=(Stage(40.0, 2, N_REFS),), soft_stages=0,
                      phasing=PhasingSchedule(n_loops=1, er_before=2, hio=2, er_after=2, final_er=2),
                      n_phasing_runs=1, final_phasing_runs=1, cg_maxiter=3, reference_batch=batch,
                      local_candidates=2, backend=backend, eps=1e-3)


def _require_simulator_or_gpu():
    if not backends.is_available("numba-cuda"):
        pytest.skip("numba-cuda unavailable (no GPU and not under the CUDA simulator)")


def _fake_device(monkeypatch):
    """Install the counting CuPy stand-in as the numba-cuda backend's array module."""
    cp = _fakecupy.install(monkeypatch)
    from spkernels.backends.numba_cuda import nufft as numba_cuda_nufft

    # Pretend the simulator's device is a GPU with CuPy: the backend's arrays are the fake's.
    monkeypatch.setattr(numba_cuda_nufft, "array_module", lambda: cp)
    cp.LOG.clear()
    return cp


def _stage_sizes(data, cfg):
    box = cfg.box_factor * cfg.particle_diameter
    M = grid_size(cfg.stages[0].resolution, box)
    s_lim = min(1.0 / cfg.stages[0].resolution, (M - 1) / (2.0 * box))
    sel = np.linalg.norm(data.s, axis=1) <= s_lim
    return M, box / M, sel


def test_gpu_generations_stay_on_the_device_and_match_the_cpu_backend(data, monkeypatch):
    _require_simulator_or_gpu()
    if not backends.cuda_simulator():
        pytest.skip("the counting stand-in for CuPy needs the simulator's host-memory device")
    cp = _fake_device(monkeypatch)
    per_gen = []

    def mark(entry, rho):
        per_gen.append(list(cp.LOG.events))
        cp.LOG.clear()

    gpu = reconstruct(data, _config("numba-cuda", N_REFS // 4), progress=False, callback=mark)
    cpu = reconstruct(data, _config("numba-cpu", N_REFS // 4), progress=False)
    # The device path computes what the CPU backend computes: the same orientations, and
    # densities equal to far below the NUFFT's eps (1e-3): numba-cpu evaluates the spreading
    # kernel from its Horner table, numba-cuda directly, so they differ at the table's accuracy
    # (measured: 1e-6 of the maximum after CG and phasing), not bitwise.
    assert [h["generation"] for h in gpu.history] == [0, 1]
    np.testing.assert_array_equal(gpu.orientations, cpu.orientations)
    assert np.abs(gpu.rho - cpu.rho).max() <= 1e-5 * np.abs(cpu.rho).max()
    np.testing.assert_allclose(gpu.ac, cpu.ac, rtol=0, atol=1e-5 * np.abs(cpu.ac).max())

    M, _, sel = _stage_sizes(data, _config("numba-cuda", N_REFS))
    image_block = N_IMAGES * int(sel.sum()) * data.intensities.itemsize
    checkpoint = M**3 * 8
    assert image_block != checkpoint
    for g, events in enumerate(per_gen):
        up = [e for e in events if e[0] == "to_device"]
        down = [e for e in events if e[0] == "to_host"]
        # The images go up once, in the stage's first generation, and never come back.
        assert sum(1 for e in up if e[1] == image_block) == (1 if g == 0 else 0), f"generation {g}: uploads {up}"
        assert not any(e[1] == image_block for e in down), f"generation {g}: downloads {down}"
        # Downloads: the checkpoint's rho and ac, and per-image results (index, score, ...).
        assert sum(1 for e in down if e[1] == checkpoint) == 2, f"generation {g}: downloads {down}"
        assert all(e[1] <= 8 * N_IMAGES for e in down if e[1] != checkpoint), f"generation {g}: downloads {down}"


def test_matching_moves_nothing_per_reference_batch(data, monkeypatch):
    _require_simulator_or_gpu()
    if not backends.cuda_simulator():
        pytest.skip("the counting stand-in for CuPy needs the simulator's host-memory device")
    cfg = _config("numba-cuda", N_REFS)
    M, dx, sel = _stage_sizes(data, cfg)
    rng = np.random.default_rng(1)
    ac = np.abs(np.fft.fftshift(np.fft.ifftn(np.abs(np.fft.fftn(rng.random((M, M, M)))) ** 2)))
    current = random_orientations(N_IMAGES, np.random.default_rng(2))
    cp = _fake_device(monkeypatch)
    args = [cp.asarray(a) for a in (ac, np.ascontiguousarray(data.intensities[:, sel]), data.s[sel],
                                    data.pixel_weights()[sel])]
    crossings = []
    # One reference batch (twice: the first call also uploads the NUFFT grid tables, made once
    # per grid shape and process), then four.
    for batch in (N_REFS, N_REFS, N_REFS // 4):
        cp.LOG.clear()
        q, sc, kept = match_orientations(args[0], args[1], args[2], args[3], current, dx, N_REFS,
                                         np.random.default_rng(3), reference_batch=batch, photon_floor=cfg.photon_floor,
                                         eps=cfg.eps, backend="numba-cuda", keep_current=True, local_candidates=2,
                                         local_angle=None, switch_margin=0.0)
        crossings.append(sorted((k, n) for k, n, _ in cp.LOG.events if k != "sync"))
        assert q.shape == (N_IMAGES, 4) and np.isfinite(sc).all()
    # The same crossings with one and with four batches: nothing moves per batch (the
    # references' rotations go up at once, the per-image results come down at once). The
    # switch margin is off here: the images it sends back to their current orientation depend
    # on the batch size (the photon scale is fitted on the first batch), and so would the size
    # of its one upload of their rotations.
    assert crossings[1] == crossings[2], crossings
    assert max(n for _, n in crossings[2]) <= max(N_REFS, 3 * N_IMAGES) * 72