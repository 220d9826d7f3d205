"""The backend registry, build info, CLI and device-array plumbing."""

import json
import subprocess
import sys

import numpy as np
import pytest

import spkernels
from spkernels import BackendUnavailableError, backends
from spkernels._arrays import ensure_array, ensure_finite, ensure_nonempty


def test_reference_backends_always_usable():
    usable = spkernels.available_backends()
    assert "numpy" in usable
    assert usable == [b for b in backends.BACKENDS if b in usable]  # auto order kept


def test_core_builds_cpu_kernels():
    core = backends.core()
    assert core is not None, "spkernels._core must always build (CPU part)"
    info = core.build_info()
    assert info["cpu_threads"] >= 1
    assert "runtime" in info["families"]
    assert backends.is_available("cpu")


def test_resolve_rejects_unknown_and_wrong_types():
    with pytest.raises(ValueError, match="numba-cuda"):
        backends.resolve("cudaa")
    with pytest.raises(TypeError, match="`backend`"):
        backends.resolve(3)
    with pytest.raises(ValueError, match="not implemented"):
        backends.resolve("cpu", supported=("numpy",))


def test_unavailable_backend_names_the_usable_ones():
    missing = [b for b in backends.BACKENDS if not backends.is_available(b)]
    if not missing:
        pytest.skip("every backend is usable here")
    with pytest.raises(BackendUnavailableError, match="Usable backends here: .*numpy"):
        backends.resolve(missing[0])
    assert issubclass(BackendUnavailableError, RuntimeError)


def test_auto_prefers_gpu_then_cpu_core():
    got = backends.resolve("auto")
    assert got in backends.available_backends()
    for name in ("cuda", "numba-cuda", "cpu"):
        if backends.is_available(name) and not (name == "numba-cuda" and backends.cuda_simulator()):
            assert got == name
            break


def test_device_inputs_refuse_cpu_backends():
    with pytest.raises(ValueError, match="GPU arrays"):
        backends.resolve("numpy", on_device=True)


def test_info_and_cli_agree():
    d = spkernels.info()
    assert d["backends"] == spkernels.available_backends()
    assert set(d["unavailable"]) == set(backends.BACKENDS) - set(d["backends"])
    out = subprocess.run([sys.executable, "-m", "spkernels", "info", "--json"], capture_output=True,
                         text=True, check=True)
    cli = json.loads(out.stdout)
    assert cli["backends"] == d["backends"]
    assert cli["core"]["cuda_architectures"] == d["core"]["cuda_architectures"]
    text = subprocess.run([sys.executable, "-m", "spkernels", "info"], capture_output=True, text=True,
                          check=True).stdout
    assert "backends" in text and "CUDA compiled" in text


def test_validation_helpers_name_the_argument():
    with pytest.raises(TypeError, match="`a` must have dtype float32 or float64, got int64"):
        ensure_array("a", np.arange(3), dtypes=(np.float32, np.float64))
    with pytest.raises(ValueError, match="`a` must be 2-D"):
        ensure_array("a", np.zeros(3), ndim=2)
    with pytest.raises(TypeError, match="`a` must be an array"):
        ensure_array("a", None)
    with pytest.raises(ValueError, match="`a` contains NaN"):
        ensure_finite("a", np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="`a` must not be empty"):
        ensure_nonempty("a", np.zeros((0, 3)))


def test_device_array_round_trip(cuda_only, rng):
    from spkernels._arrays import DeviceArray, device_pointer

    a = rng.standard_normal((17, 5)).astype(np.float32)
    d = DeviceArray.from_host(a)
    assert device_pointer(d) == d.ptr and d.shape == a.shape
    np.testing.assert_array_equal(d.get(), a)
