"""The kernel families' benchmark cases and CUDA sanitizer cases.

- Every ``m.def("<name>_cuda", ...)`` in ``cpp/bindings/*.cpp`` has a sanitizer case, so a new
  launcher without one fails here (no GPU needed) instead of only in ``ci/gpu.sh --strict``.
- Each sanitizer case is run against a fake ``_core`` whose launchers check every call against
  the argument list parsed from the bindings source (count, kinds, pointers that are live
  device buffers of the case): the cases cannot run on this machine, but their calls can be
  checked. On a GPU machine the same cases run for real.
- The CPU rows of each family case prepare (which checks them against the NumPy reference)
  and run at the small size.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from spkernels import BackendUnavailableError, _arrays, backends
from spkernels.bench import registry

ROOT = Path(__file__).resolve().parents[1]
FAMILY_CASES = ("distance_argmin", "cg", "fsc_accumulate", "nufft_type1", "nufft_type2")


def _sanitize_module():
    spec = importlib.util.spec_from_file_location("sanitize_kernels", ROOT / "ci" / "sanitize_kernels.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_DEF = re.compile(r'm\.def\(\s*"(\w+_cuda)"')
_LAMBDA = re.compile(r"\[\]\s*\(([^)]*)\)")
_ARG = re.compile(r'py::arg\("(\w+)"\)(\s*=)?')


def _kind(ctype: str) -> str:
    t = ctype.replace("const", "").replace("&", "").strip()
    if t.endswith("uintptr_t"):
        return "ptr"
    if t in ("index_t", "std::int64_t", "int64_t", "int", "spk::index_t"):
        return "int"
    if t == "bool":
        return "bool"
    if t == "double":
        return "float"
    if t == "std::string":
        return "str"
    raise AssertionError(f"unknown binding argument type {ctype!r}")


def binding_signatures() -> dict:
    """``{name: [(arg name, kind, has default), ...]}`` of every ``*_cuda`` binding."""
    sigs = {}
    for path in sorted((ROOT / "cpp" / "bindings").glob("*.cpp")):
        text = path.read_text()
        starts = [m.start() for m in re.finditer(r"m\.def\(", text)] + [len(text)]
        for a, b in zip(starts, starts[1:]):
            chunk = text[a:b].split("#endif")[0]
            m = _DEF.match(chunk)
            if not m:
                continue
            lam = _LAMBDA.search(chunk)
            assert lam, f"{m.group(1)}: no lambda found in {path.name}"
            params = [p.strip() for p in lam.group(1).split(",") if p.strip()]
            args = _ARG.findall(chunk)
            assert len(args) == len(params), f"{m.group(1)}: {len(params)} parameters but {len(args)} py::arg"
            sigs[m.group(1)] = [(name, _kind(p.rsplit(None, 1)[0]), bool(default))
                                for (name, default), p in zip(args, params)]
    return sigs


def test_bindings_are_parsed():
    sigs = binding_signatures()
    # the families merged so far; a parse that finds fewer is broken, not the bindings
    for name in ("distance_topk_cuda", "pairwise_score_cuda", "segmented_argmin_cuda", "cg_dot_cuda",
                 "cg_update_xr_cuda", "cg_update_p_cuda", "cg_residual_cuda", "fsc_accumulate_cuda",
                 "nufft_setpts_cuda", "nufft_spread_cuda", "nufft_interp_cuda"):
        assert name in sigs
    assert sigs["fsc_accumulate_cuda"][2] == ("dtype", "str", False)
    assert sigs["distance_topk_cuda"][-1] == ("stream", "ptr", True)


def test_every_cuda_binding_has_a_sanitizer_case():
    san = _sanitize_module()
    cases = san.registered_cases()
    missing = sorted(set(binding_signatures()) - set(cases))
    assert not missing, (f"CUDA launchers without a sanitizer case: {missing}; add SANITIZE_CASES to the "
                         "family's spkernels/bench/cases module (see ARCHITECTURE.md, Benchmarks)")


class _FakeBuffer:
    live: dict = {}

    def __init__(self, nbytes):
        self._mem = np.empty(max(1, int(nbytes)), np.uint8)
        self.ptr = self._mem.ctypes.data
        _FakeBuffer.live[self.ptr] = self._mem

    def copy_from_host(self, a):
        self._mem[: a.size] = a

    def copy_to_host(self, a):
        a[...] = self._mem[: a.size]


class _FakeCore:
    """Launchers that only check their arguments against the bindings (nothing is computed)."""

    CG_WORK_SIZE = 2048
    DeviceBuffer = _FakeBuffer

    def __init__(self, sigs):
        self.sigs = sigs
        self.calls: dict = {}

    def cuda_synchronize(self):
        pass

    def __getattr__(self, name):
        if name not in self.sigs:
            raise AttributeError(name)
        sig = self.sigs[name]

        def launcher(*args, **kwargs):
            assert not kwargs, f"{name}: call by position, as the bindings are documented"
            required = sum(1 for _, _, d in sig if not d)
            assert required <= len(args) <= len(sig), f"{name}: {len(args)} arguments, expected {required}..{len(sig)}"
            for value, (arg, kind, _) in zip(args, sig):
                if kind == "ptr":
                    assert isinstance(value, (int, np.integer)) and not isinstance(value, bool), f"{name}: `{arg}`"
                    if arg == "stream" or "weights" in arg:
                        assert value == 0 or value in _FakeBuffer.live, f"{name}: `{arg}` is not a device buffer"
                    else:
                        assert value in _FakeBuffer.live, f"{name}: `{arg}`={value:#x} is not a device buffer"
                elif kind == "int":
                    assert isinstance(value, (int, np.integer)) and not isinstance(value, bool), f"{name}: `{arg}`"
                    assert value >= 0, f"{name}: `{arg}` is negative"
                elif kind == "bool":
                    assert isinstance(value, (bool, np.bool_)), f"{name}: `{arg}` must be a bool"
                elif kind == "float":
                    assert isinstance(value, (float, int, np.floating, np.integer)), f"{name}: `{arg}`"
                else:
                    assert isinstance(value, str), f"{name}: `{arg}` must be a string"
            self.calls[name] = self.calls.get(name, 0) + 1

        return launcher


@pytest.mark.parametrize("name", sorted(binding_signatures()))
def test_sanitizer_case_calls_match_the_bindings(name, monkeypatch):
    sigs = binding_signatures()
    fake = _FakeCore(sigs)
    monkeypatch.setattr(_arrays, "core", lambda: fake)
    _FakeBuffer.live = {}
    case = _sanitize_module().registered_cases()[name]
    try:
        case(fake, np.random.default_rng(1))
    except RuntimeError:
        pass  # the fake computes nothing, so the case's own result check rejects the poisoned outputs
    assert fake.calls.get(name, 0) >= 1, f"the case for {name} never called it (calls: {fake.calls})"


def _view(ptr, dtype, shape=None):
    """The fake device buffer at `ptr` as an array (all of it when `shape` is None)."""
    mem = _FakeBuffer.live[int(ptr)]
    dtype = np.dtype(dtype)
    if shape is None:
        return mem[: mem.size // dtype.itemsize * dtype.itemsize].view(dtype)
    count = int(np.prod(shape))
    return mem[: count * dtype.itemsize].view(dtype).reshape(shape)


class _EmulatingCore(_FakeCore):
    """Launchers checked as above, then carried out by their CPU twins on the fake buffers, so a
    case's own result check must pass: the cases will not fail a correct GPU."""

    def __init__(self, sigs, cpu):
        super().__init__(sigs)
        self.cpu = cpu

    def __getattr__(self, name):
        check = super().__getattr__(name)
        impl = getattr(self, "_emu_" + name[: -len("_cuda")], None)
        if impl is None:
            pytest.skip(f"no CPU emulation for {name}")

        def launcher(*args):
            check(*args)
            impl(*args)

        return launcher

    # distance: every precision emulated by the fp32 CPU path
    def _emu_distance_topk(self, pm, pd, pw, R, N, P, metric, k, prec, oi, os_, stream=0):
        w = None if pw == 0 else _view(pw, np.float32, (P,))
        idx, sc = self.cpu.distance_topk_cpu(_view(pm, np.float32, (R, P)), _view(pd, np.float32, (N, P)), w,
                                             metric, k)
        _view(oi, np.int64, (N, k))[...] = idx
        _view(os_, np.float32, (N, k))[...] = sc

    def _emu_pairwise_score(self, pm, pd, pw, R, N, P, metric, prec, out, stream=0):
        w = None if pw == 0 else _view(pw, np.float32, (P,))
        _view(out, np.float32, (R, N))[...] = self.cpu.pairwise_score_cpu(
            _view(pm, np.float32, (R, P)), _view(pd, np.float32, (N, P)), w, metric)

    def _emu_segmented_argmin(self, pv, po, S, pi, pval, stream=0):
        offs = _view(po, np.int64, (S + 1,))
        idx, val = self.cpu.segmented_argmin_cpu(_view(pv, np.float32, (int(offs[-1]),)), offs.copy())
        _view(pi, np.int64, (S,))[...] = idx
        _view(pval, np.float32, (S,))[...] = val

    @staticmethod
    def _real(tag):
        return np.float32 if tag == "f32" else np.float64

    def _emu_cg_residual(self, r, b, q, n, tag, stream=0):
        t = self._real(tag)
        np.subtract(_view(b, t, (n,)), _view(q, t, (n,)), out=_view(r, t, (n,)))

    def _emu_cg_dot(self, a, b, n, cplx, tag, st, h, which, work, stream=0):
        t = self._real(tag)
        self.cpu.cg_dot_cpu(_view(a, t, (n,)), _view(b, t, (n,)), cplx, _view(st, np.float64, (16,)),
                            _view(h, np.float64), which)

    def _emu_cg_update_xr(self, x, r, p, q, n, tag, st, h, work, stream=0):
        t = self._real(tag)
        self.cpu.cg_update_xr_cpu(*(_view(v, t, (n,)) for v in (x, r, p, q)), _view(st, np.float64, (16,)),
                                  _view(h, np.float64))

    def _emu_cg_update_p(self, p, z, n, tag, st, stream=0):
        t = self._real(tag)
        self.cpu.cg_update_p_cpu(_view(p, t, (n,)), _view(z, t, (n,)), _view(st, np.float64, (16,)))

    def _emu_fsc_accumulate(self, f1, f2, tag, nz, ny, nx, az, ay, ax, n_shells, sums, stream=0):
        t = np.complex64 if tag == "c64" else np.complex128
        shape = (nz, ny, nx // 2 + 1)
        _view(sums, np.float64, (n_shells * 4,))[...] = self.cpu.fsc_accumulate_cpu(
            _view(f1, t, shape), _view(f2, t, shape), nx, az, ay, ax, n_shells).reshape(-1)

    # nufft: the Numba CPU engine (the C++ CPU one may be missing from an older build)
    def _emu_nufft_setpts(self, x, y, z, m, n1, n2, n3, b1, b2, b3, tag, perm, offs, stream=0):
        from spkernels.backends.numba_cpu import nufft as eng

        t = self._real(tag)
        p, o = eng.setpts(*(_view(v, t, (m,)) for v in (x, y, z)), (n1, n2, n3), (b1, b2, b3))
        _view(perm, np.int64, (m,))[...] = p
        _view(offs, np.int64, o.shape)[...] = o

    def _emu_nufft_spread(self, x, y, z, c, nv, m, perm, offs, n1, n2, n3, b1, b2, b3, w, beta, tag, method,
                          fine, stream=0):
        from spkernels.backends.numba_cpu import nufft as eng

        t, ct = self._real(tag), (np.complex64 if tag == "f32" else np.complex128)
        nb = int(np.prod([(a + b - 1) // b for a, b in zip((n1, n2, n3), (b1, b2, b3))]))
        _view(fine, ct, (nv, n1, n2, n3))[...] = eng.spread(
            *(_view(v, t, (m,)) for v in (x, y, z)), _view(c, ct, (nv, m)), _view(perm, np.int64, (m,)),
            _view(offs, np.int64, (nb + 1,)), (n1, n2, n3), (b1, b2, b3), w, beta, method)

    def _emu_nufft_interp(self, x, y, z, fine, nv, m, perm, n1, n2, n3, w, beta, tag, out, stream=0):
        from spkernels.backends.numba_cpu import nufft as eng

        t, ct = self._real(tag), (np.complex64 if tag == "f32" else np.complex128)
        _view(out, ct, (nv, m))[...] = eng.interp(*(_view(v, t, (m,)) for v in (x, y, z)),
                                                  _view(fine, ct, (nv, n1, n2, n3)), _view(perm, np.int64, (m,)),
                                                  w, beta)


    # insertion: the C++ CPU loops on whole volumes; a z-slab launch adds its planes of the whole
    def _emu_insertion_insert(self, img, ctf, rot, tab, table_size, tag, n, N, scale, radius, max_freq2, vol, wts,
                              method, bx, by, bz, batch, in_shared, z0, nz, stream=0, layout="slab"):
        t, ct = (np.float32, np.complex64) if tag == "c64" else (np.float64, np.complex128)
        nz = N if nz < 0 else nz
        h = N // 2
        whole_v = np.zeros((N, N, h + 1), ct)
        whole_w = np.zeros((N, N, h + 1), t)
        self.cpu.insertion_insert_cpu(_view(img, ct, (n, N, N)), None if ctf == 0 else _view(ctf, t, (n, N, N)),
                                      _view(rot, t, (n, 3, 3)), _view(tab, t, (table_size,)), scale, radius,
                                      max_freq2, whole_v, whole_w, method)
        _view(vol, ct, (nz, N, h + 1))[...] += whole_v[z0:z0 + nz]
        _view(wts, t, (nz, N, h + 1))[...] += whole_w[z0:z0 + nz]

    def _emu_insertion_extract(self, vol, ctf, rot, tab, table_size, tag, n, N, scale, radius, max_freq2, out,
                               stream=0):
        t, ct = (np.float32, np.complex64) if tag == "c64" else (np.float64, np.complex128)
        _view(out, ct, (n, N, N))[...] = self.cpu.insertion_extract_cpu(
            _view(vol, ct, (N, N, N // 2 + 1)), None if ctf == 0 else _view(ctf, t, (n, N, N)),
            _view(rot, t, (n, 3, 3)), _view(tab, t, (table_size,)), scale, radius, max_freq2)


@pytest.mark.parametrize("name", sorted(binding_signatures()))
def test_sanitizer_case_passes_with_cpu_emulated_launchers(name, monkeypatch):
    cpu = backends.core()
    if cpu is None:
        pytest.skip("spkernels._core is not built")
    fake = _EmulatingCore(binding_signatures(), cpu)
    monkeypatch.setattr(_arrays, "core", lambda: fake)
    _FakeBuffer.live = {}
    _sanitize_module().registered_cases()[name](fake, np.random.default_rng(3))  # its own checks must pass
    assert fake.calls.get(name, 0) >= 1


def test_family_cases_are_registered():
    cases = registry.cases()
    for name in FAMILY_CASES:
        assert name in cases
        assert cases[name].sizes == ("small", "full")
    assert cases["distance_argmin"].ceiling == "gemm"
    for name in FAMILY_CASES[1:]:
        assert cases[name].ceiling == "copy"


@pytest.mark.parametrize("name", FAMILY_CASES)
@pytest.mark.parametrize("row", [("cpu", 0), ("cpu", 1), ("numba-cpu", 0)])
def test_cpu_rows_prepare_check_and_run(name, row):
    backend, which = row  # which: index into the case's precisions (single, double)
    if not backends.is_available(backend):
        pytest.skip(f"backend {backend!r} unavailable: {backends._why_unavailable(backend)}")
    try:  # raises RuntimeError if it disagrees with the reference
        prep = registry.get(name).prepare(backend, "small", registry.get(name).precisions[which])
    except BackendUnavailableError as exc:  # e.g. a _core built before the family's C++ landed
        pytest.skip(str(exc))
    prep.run()
    assert prep.bytes > 0 and prep.items > 0
    assert (prep.flops > 0) == (registry.get(name).ceiling == "gemm")


def test_gpu_rows_and_sanitizer_cases_on_a_gpu(cuda_only):
    if backends.cuda_simulator():
        pytest.skip("timing cases do not run in the simulator")
    core = backends.core()
    cases = _sanitize_module().registered_cases()
    for name in sorted(binding_signatures()):
        cases[name](core, np.random.default_rng(2))
        core.cuda_synchronize()
    for name in FAMILY_CASES:
        for backend in ("cuda", "numba-cuda"):
            if backends.is_available(backend):
                registry.get(name).prepare(backend, "small", registry.get(name).precisions[0]).run()
