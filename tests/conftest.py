"""Shared fixtures: a ``backend`` fixture over the five backends.

Unavailable backends are skipped, unless ``SPK_REQUIRE_BACKENDS`` (comma-separated) names them:
then they fail, so a GPU machine cannot pass by skipping its GPU tests.
"""

from __future__ import annotations

import os
import tempfile
import zlib

import numpy as np
import pytest

from spkernels import backends

# The suite never reads or writes the user's tuning cache (~/.cache/spkernels/tuning.json), and
# tuning is off unless a test turns it on (the `tmp_cache` fixture): kernels run their defaults and
# FFT sizes follow the rule. With advice on, each session measured its FFT sizes afresh, and the
# timings' noise picked different (equally fast) sizes from run to run (e.g. 30 or 32 for 29, 75 or
# 80 for 73), so the chaotic MTIP acceptance runs followed a different trajectory every session.
os.environ["SPK_TUNING_CACHE"] = os.path.join(tempfile.mkdtemp(prefix="spk-tuning-"), "tuning.json")
os.environ.setdefault("SPK_TUNING", "off")

REQUIRED = {b.strip() for b in os.environ.get("SPK_REQUIRE_BACKENDS", "").split(",") if b.strip()}
SIMULATOR = backends.cuda_simulator()


def _check_backend(name: str) -> str:
    why = backends._why_unavailable(name)
    if why is not None:
        if name in REQUIRED:
            pytest.fail(f"backend {name!r} is required (SPK_REQUIRE_BACKENDS) but unavailable: {why}")
        pytest.skip(f"backend {name!r} unavailable: {why}")
    return name


@pytest.fixture(params=list(backends.BACKENDS))
def backend(request):
    """Each of the five backends; skipped (or failed, when required) where unavailable."""
    return _check_backend(request.param)


@pytest.fixture(params=[b for b in backends.BACKENDS if b != "numpy"])
def fast_backend(request):
    """The four compiled/JIT backends (everything but the numpy reference)."""
    return _check_backend(request.param)


@pytest.fixture
def rng(request):
    """A Generator seeded from the test's name, so each test is reproducible on its own."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


def pytest_report_header(config):
    return [
        f"spkernels backends: {', '.join(backends.available_backends())}"
        + (" (CUDA simulator)" if SIMULATOR else ""),
        f"required backends: {', '.join(sorted(REQUIRED)) or 'none'}",
    ]


def pytest_collection_modifyitems(config, items):
    # Tag every test parametrised with the numba-cuda backend, so the simulator run
    # (tests/test_numba_cuda_simulator.py) can select exactly those with `-m numba_cuda`.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and any(isinstance(v, str) and v == "numba-cuda" for v in callspec.params.values()):
            item.add_marker(pytest.mark.numba_cuda)


@pytest.fixture
def cuda_only():
    """The hand-written CUDA backend; skipped (or failed, when required) without a GPU."""
    return _check_backend("cuda")


@pytest.fixture(scope="module")
def ribosome32():
    """The 65³ ribosome map of tests/data Fourier-cropped to 32³ (band-limited, about 10 Å voxels)."""
    import pathlib

    import mrcfile

    with mrcfile.open(pathlib.Path(__file__).parent / "data" / "ribosome70S_65.mrc", permissive=True) as m:
        v = np.asarray(m.data, dtype=np.float64)
    f = np.fft.fftshift(np.fft.fftn(v))
    o = 32 - 16
    return np.fft.ifftn(np.fft.ifftshift(f[o:o + 32, o:o + 32, o:o + 32])).real


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A fresh tuning cache file for the test (``SPK_TUNING_CACHE``), tuning on."""
    from spkernels.tuning import cache

    path = tmp_path / "tuning.json"
    monkeypatch.setenv("SPK_TUNING_CACHE", str(path))
    monkeypatch.delenv("SPK_TUNING", raising=False)
    cache.reload()
    yield path
    cache.reload()
