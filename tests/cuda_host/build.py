"""Compile cpp/cuda/*.cu with the host compiler against cpp/testing and load the result.

The CUDA sources are copied through :func:`preprocess` (the ``<<< >>>`` launch and
``extern __shared__`` arrays become plain C++; the line numbers are kept, so errors and launch
sites name the original file and line), then compiled with ``-DSPK_HOST_EXEC`` and the stand-in
headers of ``cpp/testing/include`` first on the include path, and linked with
``cpp/testing/host_runtime.cpp`` and the C ABI ``cpp/testing/capi.cpp`` into one shared library
per set of sources. Objects and libraries are cached under ``build/cuda_host/`` (or
``$SPK_HOST_CACHE``) by a hash of
everything that goes into them, so only the first session after a change pays the compile.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CUDA_DIR = ROOT / "cpp" / "cuda"
TESTING = ROOT / "cpp" / "testing"
CACHE = Path(os.environ.get("SPK_HOST_CACHE", ROOT / "build" / "cuda_host"))  # objects and libraries
SOURCES = tuple(sorted(p.name for p in CUDA_DIR.glob("*.cu")))  # every family: a new .cu is built too
# $SPK_HOST_CXXFLAGS adds flags (e.g. -DSPKH_USE_UCONTEXT for the portable fibre switch)
FLAGS = ("-std=c++17", "-O1", "-fPIC", "-ffp-contract=off", "-DSPK_HOST_EXEC", "-pthread",
         *os.environ.get("SPK_HOST_CXXFLAGS", "").split())

_SHARED_ALIGN = re.compile(r"__shared__\s+((?:alignas|__align__)\(\s*\d+\s*\))")
_EXTERN_SHARED = re.compile(
    r"extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([A-Za-z_][\w:\s]*?)\s+(\w+)\s*\[\s*\]\s*;")


def compiler() -> str | None:
    """The host C++ compiler ($CXX, else g++, c++ or clang++), or None when there is none."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def preprocess(text: str, origin: str) -> str:
    """The CUDA source `text` as host C++ for cpp/testing; `origin` names it in #line.

    ``kern<<<g, b, s, st>>>(args)`` becomes
    ``kern | ::spk_host::launch_cfg(__FILE__, __LINE__, g, b, s, st) | ::spk_host::launch_args(args)``
    ``extern __shared__ T name[];`` a pointer to the launch's dynamic shared memory, and
    ``__shared__ alignas(n)`` ``alignas(n) __shared__`` (``__shared__`` is ``static`` here).
    """
    if not isinstance(text, str):
        raise TypeError(f"`text` must be str, got {type(text).__name__}")
    text = _EXTERN_SHARED.sub(
        lambda m: f"{m.group(1)}* {m.group(2)} = reinterpret_cast<{m.group(1)}*>(::spk_host::dynamic_smem());", text)
    text = _SHARED_ALIGN.sub(r"\1 __shared__", text)  # `static alignas(n)` is not C++; `alignas(n) static` is
    if text.count("<<<") != text.count(">>>"):
        raise ValueError(f"{origin}: unbalanced <<< >>>")
    text = text.replace("<<<", " | ::spk_host::launch_cfg(__FILE__, __LINE__, ").replace(
        ">>>", ") | ::spk_host::launch_args")
    return f'#line 1 "{origin}"\n' + text


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def _headers_digest() -> str:
    files = sorted([*CUDA_DIR.glob("*.h"), *CUDA_DIR.glob("*.cuh"), *(ROOT / "cpp" / "include" / "spk").glob("*.h"),
                    *TESTING.rglob("*.h"), *TESTING.rglob("*.cuh")])
    return _digest(*[f.relative_to(ROOT).as_posix() for f in files], *[f.read_bytes() for f in files])


def _run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"host compile failed: {' '.join(cmd)}\n{r.stderr[-6000:]}")


def _object(cxx: str, name: str, text: str, suffix: str, headers: str, extra: tuple) -> Path:
    key = _digest(cxx, FLAGS, extra, headers, name, text)
    obj = CACHE / "obj" / f"{Path(name).stem}-{key}.o"
    if obj.exists():
        return obj
    obj.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=obj.parent) as tmp:
        src = Path(tmp) / (Path(name).stem + suffix)
        src.write_text(text)
        out = Path(tmp) / "out.o"
        _run([cxx, *FLAGS, *extra, "-I", str(TESTING / "include"), "-I", str(ROOT / "cpp"),
              "-I", str(ROOT / "cpp" / "include"), "-x", "c++", "-c", str(src), "-o", str(out)])
        os.replace(out, obj)
    return obj


def build(patches: dict | None = None, sources=SOURCES, jobs: int = 2, extra=()) -> Path:
    """Compile `sources` (names in cpp/cuda) and the harness into a shared library; its path.

    `patches` maps a source name to a function of its text (for deliberately broken kernels in
    the harness's own tests); it is applied before :func:`preprocess`. `extra` lists further
    .cu files (paths) to compile in, e.g. the harness's own test kernels.
    """
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler found (set $CXX)")
    patches = dict(patches or {})
    unknown = set(patches) - set(sources)
    if unknown:
        raise ValueError(f"`patches` names sources that are not built: {sorted(unknown)}")
    headers = _headers_digest()
    units = []
    for name in sources:
        text = (CUDA_DIR / name).read_text()
        if name in patches:
            patched = patches[name](text)
            if patched == text:
                raise ValueError(f"the patch of {name} changed nothing")
            text = patched
        units.append((name, preprocess(text, f"cpp/cuda/{name}"), ".cpp"))
    for f in extra:
        f = Path(f)
        units.append((f.name, preprocess(f.read_text(), f.name), ".cpp"))
    for f in ("host_runtime.cpp", "capi.cpp"):
        units.append((f, (TESTING / f).read_text(), ".cpp"))
    with_families = tuple(f"-DSPKH_WITH_{Path(n).stem.upper()}" for n in sources)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        objs = list(ex.map(lambda u: _object(cxx, u[0], u[1], u[2], headers,
                                             with_families if u[0] == "capi.cpp" else ()), units))
    key = _digest(*[o.name for o in objs])
    lib = CACHE / f"libspk_cuda_host-{key}.so"
    if not lib.exists():
        tmp = lib.with_suffix(f".{os.getpid()}.tmp")
        _run([cxx, "-shared", "-pthread", "-Wl,-Bsymbolic", "-o", str(tmp), *map(str, objs)])
        os.replace(tmp, lib)
    return lib


class LauncherError(RuntimeError):
    """A launcher raised something other than std::invalid_argument (a CUDA error, a kernel fault)."""


_i64, _u64, _int, _dbl, _str = ctypes.c_int64, ctypes.c_uint64, ctypes.c_int, ctypes.c_double, ctypes.c_char_p

# argument types of the C ABI (cpp/testing/capi.cpp); every one returns int
_SIGNATURES = {
    "spkh_distance_topk": [_u64, _u64, _u64, _i64, _i64, _i64, _int, _int, _str, _u64, _u64, _u64],
    "spkh_pairwise_score": [_u64, _u64, _u64, _i64, _i64, _i64, _int, _str, _u64, _u64],
    "spkh_segmented_argmin": [_u64, _u64, _i64, _u64, _u64, _u64],
    "spkh_nufft_setpts": [_u64, _u64, _u64, _i64, _i64, _i64, _i64, _i64, _i64, _i64, _int, _u64, _u64, _u64],
    "spkh_nufft_spread": [_u64, _u64, _u64, _u64, _i64, _i64, _u64, _u64, _i64, _i64, _i64, _i64, _i64, _i64, _int,
                          _dbl, _int, _int, _u64, _u64],
    "spkh_nufft_interp": [_u64, _u64, _u64, _u64, _i64, _i64, _u64, _i64, _i64, _i64, _int, _dbl, _int, _u64, _u64],
    "spkh_cg_dot": [_u64, _u64, _i64, _int, _int, _u64, _u64, _int, _u64, _u64],
    "spkh_cg_update_xr": [_u64, _u64, _u64, _u64, _i64, _int, _u64, _u64, _u64, _u64],
    "spkh_cg_update_p": [_u64, _u64, _i64, _int, _u64, _u64],
    "spkh_cg_residual": [_u64, _u64, _u64, _i64, _int, _u64],
    "spkh_fsc_accumulate": [_u64, _u64, _int, _i64, _i64, _i64, _dbl, _dbl, _dbl, _int, _u64, _u64],
    "spkh_insertion_insert": [_u64, _u64, _u64, _u64, _i64, _int, _i64, _i64, _dbl, _dbl, _dbl, _u64, _u64, _int, _int,
                              _int, _int, _int, _int, _int, _int, _u64],
    "spkh_insertion_extract": [_u64, _u64, _u64, _u64, _i64, _int, _i64, _i64, _dbl, _dbl, _dbl, _u64, _u64],
    "spkh_device_properties": [_int, ctypes.c_char_p, _int, ctypes.POINTER(_int), ctypes.POINTER(ctypes.c_ulonglong)],
    "spkh_current_device": [ctypes.POINTER(_int)],
    "spkh_set_device": [_int],
    "spkh_free_memory": [ctypes.POINTER(ctypes.c_ulonglong)],
    "spkh_malloc_device": [ctypes.c_ulonglong, ctypes.POINTER(_u64)],
    "spkh_memcpy_h2d": [_u64, ctypes.c_void_p, ctypes.c_ulonglong, _u64],
    "spkh_memcpy_d2h": [ctypes.c_void_p, _u64, ctypes.c_ulonglong, _u64],
    "spkh_memcpy_d2d": [_u64, _u64, ctypes.c_ulonglong, _u64],
    "spkh_stream_synchronize": [_u64],
    "spkh_device_synchronize": [],
}

SCHEDULES = {"forward": 0, "reverse": 1, "random": 2}


class HostCuda:
    """A loaded host-execution library: the launchers of cpp/cuda/*.h and emulated device memory."""

    def __init__(self, path):
        self.path = Path(path)
        self.lib = ctypes.CDLL(str(self.path))
        for name, args in _SIGNATURES.items():
            fn = getattr(self.lib, name, None)
            if fn is None:  # a library built from some of the sources only
                continue
            fn.argtypes = args
            fn.restype = ctypes.c_int
        self.lib.spkh_error.restype = ctypes.c_char_p
        self.lib.spkh_set_schedule.argtypes = [ctypes.c_int, ctypes.c_ulonglong]
        self.lib.spkh_live_allocations.restype = ctypes.c_longlong
        self.lib.spkh_live_bytes.restype = ctypes.c_longlong
        self.lib.spkh_free_device.argtypes = [_u64]
        self.lib.spkh_free_device.restype = None
        self.lib.spkh_device_count.restype = ctypes.c_int

    def call(self, name: str, *args):
        """Call launcher ``spkh_<name>``; ValueError for std::invalid_argument, LauncherError otherwise."""
        code = getattr(self.lib, "spkh_" + name)(*args)
        if code == 1:
            raise ValueError(self.lib.spkh_error().decode())
        if code != 0:
            raise LauncherError(self.lib.spkh_error().decode())

    def schedule(self, policy: str, seed: int = 1) -> None:
        """Resume threads and blocks in `policy` order: forward, reverse or (seeded) random."""
        if policy not in SCHEDULES:
            raise ValueError(f"`policy` must be one of {', '.join(SCHEDULES)}, got {policy!r}")
        self.lib.spkh_set_schedule(SCHEDULES[policy], int(seed))

    def allow_untracked(self, on: bool = True) -> None:
        """Let memcpy / memset take host memory the emulated heap did not allocate (for CuPy stand-ins)."""
        self.lib.spkh_allow_untracked(int(bool(on)))

    def reset(self) -> None:
        """Clear a sticky kernel fault left by a test that expected one."""
        self.lib.spkh_reset()

    def live_allocations(self) -> int:
        """Number of emulated device allocations not yet freed."""
        return int(self.lib.spkh_live_allocations())

    def stats(self) -> dict:
        """Launches, blocks and fibre switches so far."""
        out = (ctypes.c_ulonglong * 3)()
        self.lib.spkh_stats(out)
        return {"launches": out[0], "blocks": out[1], "switches": out[2]}

    # ---- emulated device memory, through runtime.cu's wrappers ----

    def alloc(self, nbytes: int) -> int:
        """A device allocation of `nbytes` (poisoned with 0xFF bytes); its address."""
        p = _u64()
        self.call("malloc_device", int(nbytes), ctypes.byref(p))
        return p.value

    def to_device(self, a) -> "DeviceBuffer":
        """A device copy of host array `a`."""
        a = np.ascontiguousarray(a)
        buf = DeviceBuffer(self, a.shape, a.dtype)
        if a.nbytes:
            self.call("memcpy_h2d", buf.ptr, a.ctypes.data, a.nbytes, 0)
        return buf

    def empty(self, shape, dtype) -> "DeviceBuffer":
        """An uninitialised (poisoned) device array."""
        return DeviceBuffer(self, shape, dtype)


class DeviceBuffer:
    """An emulated device array: pointer, shape and dtype; ``get()`` copies it to the host."""

    def __init__(self, host: HostCuda, shape, dtype):
        self.host = host
        self.shape = tuple(int(s) for s in np.atleast_1d(shape)) if np.ndim(shape) else (int(shape),)
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.ptr = host.alloc(self.nbytes)

    def get(self) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        if self.nbytes:
            self.host.call("memcpy_d2h", out.ctypes.data, self.ptr, self.nbytes, 0)
        return out

    def set(self, a) -> None:
        a = np.ascontiguousarray(a, dtype=self.dtype)
        if a.nbytes != self.nbytes:
            raise ValueError(f"`a` has {a.nbytes} bytes, the buffer {self.nbytes}")
        self.host.call("memcpy_h2d", self.ptr, a.ctypes.data, a.nbytes, 0)

    def free(self) -> None:
        if self.ptr:
            self.host.lib.spkh_free_device(self.ptr)
            self.ptr = 0
