"""3-D non-uniform FFTs of type 1 (points -> modes, "insertion") and type 2 (modes -> points,
"slicing") with finufft's conventions, on every backend.

Conventions (finufft's, so finufft is a drop-in oracle):

- type 1: ``f[k1, k2, k3] = sum_j c_j exp(isign * i * (k1 x_j + k2 y_j + k3 z_j))``, isign +1;
- type 2: ``c_j = sum_k f[k1, k2, k3] exp(isign * i * (k1 x_j + k2 y_j + k3 z_j))``, isign -1;
- ``f`` has shape (N1, N2, N3), axis 0 <-> x, modes ``k_i = -N_i//2 ... (N_i-1)//2`` in
  increasing order (finufft ``modeord=0``); several vectors: ``c`` (V, M), ``f`` (V, N1, N2, N3);
- points in [-3 pi, 3 pi) (folded here into [-pi, pi));
- single precision = float32 points with complex64 values, double = float64 with complex128.

Algorithm (the backends other than ``numpy``): spread with a kernel ``phi`` of ``w`` cells onto
a fine grid ``n_i ~ sigma N_i`` (sigma = ``upsampfac``: 2, 1.5 or 1.25), FFT (``scipy.fft``
with all CPU workers, ``cupy.fft`` on the GPU), keep the central modes and divide by the
kernel's Fourier transform (type 1); type 2 runs the same steps backwards. Kernels
(``kernel=``), with the width and shape rules finufft uses for each (in 3-D, types 1 and 2):

- ``"pswf"`` (default; finufft 2.5's default): the prolate spheroidal wave function
  ``psi_0^c(z)``, width ``w = ceil(ln(0.18 * 1.4^2 / eps) / (pi sqrt(1 - 1/sigma)) + 1)``,
  bandwidth ``c = pi w (1 - 1/(2 sigma)) - 0.05``; in single precision with sigma < 1.4 the
  width is capped at 8 (wider kernels only add float32 rounding through the deconvolution);
- ``"es"`` (finufft up to 2.4): the exponential of semicircle
  ``exp(beta (sqrt(1 - z^2) - 1))``; sigma = 2: ``w = ceil(log10(1/eps)) + 1``,
  ``beta = 2.30 w``; otherwise ``w = ceil(ln(1/eps) / (pi sqrt(1 - 1/sigma)))``,
  ``beta = 0.97 pi (1 - 1/(2 sigma)) w``;
- ``w`` clamped to [2, 16]; ``n_i`` = smallest even 5-smooth integer >= max(sigma N_i, 2 w);
- backends receive the kernel as its one shape number ``beta`` (> 0: ES, < 0: PSWF with
  ``c = -beta``; see :mod:`spkernels.backends.numba_math.nufft`). The CPU backends fit a
  piecewise polynomial to either once per plan, so both cost the same there; the GPU kernels
  evaluate the ES directly (exp and sqrt are cheap there) and the PSWF from the same kind of
  table, copied to the device per launch (direct, one axis of PSWF weights costs ~30x an ES
  one: 8 us against 0.24 us on one CPU core at w = 7);
- the kernel's Fourier transform ``phihat(k) = (w/2) int_{-1}^{1} phi(z) cos(pi k w z / n) dz``
  is computed once per plan by Gauss-Legendre quadrature (for ES in ``z = sin(theta)``, which
  removes the square-root end-point singularity, so a fixed rule is exact to rounding).

Backends: each is a module ``spkernels.backends.<pkg>.nufft`` with the same contract
(``setpts`` / ``spread`` / ``interp``, ``array_module``, ``max_points``, ``BIN_TARGET`` /
``BIN_MAX``, ``EXACT``; see :mod:`spkernels.backends.numpy.nufft`), which this module reaches
through ``backends.load(name, "nufft")`` after validation; the folding, FFT, deconvolution and
batching are shared here. ``cuda`` and ``cpu`` run the spreading / interpolation kernels of
``spkernels._core``; ``numba-cuda`` and ``numba-cpu`` their Numba twins; ``numpy``
(``EXACT``) is the direct non-uniform DFT sum in float64 (chunked, O(M N^3): small sizes only,
the test oracle). Type 1 spreading defaults to ``method="gather"`` (output-driven, no
floating-point atomics, bitwise deterministic); ``method="scatter"`` is the point-driven
baseline.

The GPU backends need CuPy for the FFT (``pip install spkernels[cuda12]`` or ``[cuda13]``);
under Numba's CUDA simulator the ``numba-cuda`` backend runs on host arrays with scipy's FFT.
"""

from __future__ import annotations

import logging
import math
import numbers
import os

import numpy as np

from .. import backends as _backends
from .._arrays import (array_module, ensure_array, ensure_finite, ensure_fits, ensure_int, ensure_nonempty,
                       ensure_sizes, fmt_int, fmt_sizes, host_available_bytes, is_device_array, to_host)
from .._errors import BackendUnavailableError
from ..backends import _shared
from ..backends.numpy.nufft import mode_indices as _mode_indices

__all__ = ["nufft3d1", "nufft3d2", "Plan", "kernel_params", "kernel_width", "fine_grid_size", "KERNELS"]

log = logging.getLogger("spkernels.kernels.nufft")

#: smallest eps each precision can honour (below it rounding dominates the kernel's error)
EPS_MIN = {np.dtype(np.float32): 1e-7, np.dtype(np.float64): 1e-15}
UPSAMPFACS = (2.0, 1.5, 1.25)
#: spreading kernels: the prolate spheroidal wave function (default) and the exponential of semicircle
KERNELS = ("pswf", "es")
MIN_WIDTH, MAX_WIDTH = 2, 16
_GAUSS_NODES = 64
_GAUSS_NODES_PSWF = 100
#: points per batch on the host (bounds the sort's int64 temporaries to a few hundred MB)
_HOST_POINT_CHUNK = 1 << 26
#: tests set this to force point batching at small sizes
_POINT_CHUNK_OVERRIDE = None


# ----------------------------------------------------------------------------- parameters


def kernel_width(eps: float, precision="float64", upsampfac: float = 2.0, kernel: str = "pswf") -> int:
    """Kernel width (cells) the rule of `kernel` asks for at tolerance `eps`, before clamping.

    finufft's rules for 3-D types 1 and 2 (see the module docstring). :func:`kernel_params`
    clamps it to [2, 16] (PSWF; and 8 for single precision below sigma 1.4).
    """
    real = _real_dtype(precision, "precision")
    eps = _check_eps(eps, real)
    sigma = _check_upsampfac(upsampfac)
    kernel = _check_kernel(kernel)
    rate = math.pi * math.sqrt(1.0 - 1.0 / sigma)
    if kernel == "pswf":
        return math.ceil(math.log(0.18 * 1.4 ** 2 / eps) / rate + 1.0 - 1e-9)
    if sigma == 2.0:
        return math.ceil(math.log10(1.0 / eps) - 1e-9) + 1
    return math.ceil(math.log(1.0 / eps) / rate - 1e-9)


def kernel_params(eps: float, precision="float64", upsampfac: float = 2.0, kernel: str = "pswf") -> tuple[int, float]:
    """Kernel width ``w`` (fine-grid cells) and shape ``beta`` for tolerance `eps`.

    ``beta > 0`` is the ES kernel's shape, ``beta < 0`` the PSWF's bandwidth ``c = -beta``
    (what the backends' spread/interp take). Raises ``ValueError`` when `eps` is outside what
    the precision can reach, or (ES only, sigma < 2) needs a kernel wider than 16 cells.
    """
    real = _real_dtype(precision, "precision")
    sigma = _check_upsampfac(upsampfac)
    kernel = _check_kernel(kernel)
    w = kernel_width(eps, real, sigma, kernel)
    cutoff = math.pi * (1.0 - 0.5 / sigma)
    if kernel == "pswf":
        w = max(MIN_WIDTH, min(MAX_WIDTH, w))
        if _shared.is_single(real) and sigma < 1.4:
            w = min(w, 8)
        return w, -(cutoff * w - 0.05)
    if sigma == 2.0:
        w = max(MIN_WIDTH, min(MAX_WIDTH, w))
        return w, 2.30 * w
    if w > MAX_WIDTH:
        raise ValueError(
            f"`eps`={eps:g} needs a kernel {w} cells wide with upsampfac={sigma}, more than {MAX_WIDTH}; "
            "use upsampfac=2.0 or a larger eps"
        )
    w = max(MIN_WIDTH, w)
    return w, 0.97 * cutoff * w


def _smooth_even(n: int) -> int:
    """Smallest even integer >= max(n, 2) whose only prime factors are 2, 3 and 5 (finufft's
    fine-grid rule; the enumeration lives in :func:`spkernels.fft.good_size`)."""
    from .. import fft as _fftsize

    return _fftsize.good_size(max(2, int(n)), smooth=FINE_GRID_SMOOTH, even=True, backend="cpu")


FINE_GRID_SMOOTH = 5
"""Largest prime of the fine grid's sizes: finufft's rule, kept so that grids (and results) match
finufft's; a 7-smooth grid would be a little smaller (280 instead of 288 for 2 x 138), see
ARCHITECTURE.md, "FFT sizes"."""


def fine_grid_size(n_modes, w: int, upsampfac: float = 2.0) -> tuple[int, int, int]:
    """Fine (oversampled) grid size per axis: even, 5-smooth, >= max(sigma N, 2 w)
    (:func:`spkernels.fft.good_size` with ``smooth=5, even=True``)."""
    return tuple(_smooth_even(max(math.ceil(upsampfac * int(n)), 2 * w)) for n in n_modes)


def kernel_fourier(N: int, n: int, w: int, beta: float) -> np.ndarray:
    """``phihat(k)`` for the N modes of one axis (float64), by Gauss-Legendre quadrature.

    ``phihat(k) = (w/2) int_{-1}^{1} phi(z) cos(pi k w z / n) dz``: the Fourier transform of the
    kernel as seen on a fine grid of n cells, i.e. what spreading multiplies mode k by.
    ES (``beta > 0``): with ``z = sin(theta)``, ``sqrt(1 - z^2) = cos(theta)`` is smooth, so the
    rule converges exponentially (64 nodes are exact to rounding for w <= 16, beta <= 37).
    PSWF (``beta < 0``): the kernel is entire; 100 nodes on [0, 1] integrate it exactly to
    rounding for bandwidths up to 38 and the frequencies of any mode.
    """
    k = _mode_indices(N).astype(np.float64)
    if beta < 0:
        from ..backends.numba_math.nufft import kernel_values

        nodes, weights = np.polynomial.legendre.leggauss(_GAUSS_NODES_PSWF)
        z = 0.5 * (nodes + 1.0)
        wq = 0.5 * weights * kernel_values(z, beta)
        return w * (np.cos(np.outer(k, z) * (math.pi * w / n)) @ wq)
    nodes, weights = np.polynomial.legendre.leggauss(_GAUSS_NODES)
    theta = (nodes + 1.0) * (math.pi / 4.0)  # [0, pi/2]
    wq = weights * (math.pi / 4.0)
    z = np.sin(theta)
    phi = np.exp(beta * (np.cos(theta) - 1.0)) * np.cos(theta)  # dz = cos(theta) dtheta
    # even kernel: integral over [-1, 1] = 2 * integral over [0, 1]
    return w * (np.cos(np.outer(k, z) * (math.pi * w / n)) @ (wq * phi))


def _bin_size(n: int, w: int, target: int, largest: int) -> int:
    """Bin edge along one axis: >= w (the gather then only visits neighbouring bins), <= largest,
    near `target`, preferring divisors of n so no bin is a sliver."""
    if n <= max(w, target):
        return n if n <= largest else max(w, min(target, largest))
    divisors = [d for d in range(w, largest + 1) if n % d == 0]
    if divisors:
        return min(divisors, key=lambda d: (abs(d - target), -d))
    return max(w, min(target, largest))


# ----------------------------------------------------------------------------- validation


def _real_dtype(dtype, name):
    if dtype is None:  # np.dtype(None) would silently mean float64
        raise TypeError(f"`{name}` must be a NumPy dtype or its name (complex64 or complex128), got None")
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a NumPy dtype or its name, got {dtype!r}") from None
    if dt in _shared.REAL_DTYPES or dt in _shared.COMPLEX_DTYPES:
        return _shared.real_dtype(dt)
    raise TypeError(f"`{name}` must be complex64/float32 or complex128/float64, got {dt.name}")


def _check_eps(eps, real):
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"`eps` must be a real number, got {type(eps).__name__}")
    eps = float(eps)
    lo = EPS_MIN[np.dtype(real)]
    if not math.isfinite(eps) or eps >= 1.0 or eps < lo * (1 - 1e-12):
        prec = "single" if _shared.is_single(real) else "double"
        raise ValueError(f"`eps` must lie in [{lo:g}, 1) for {prec} precision, got {eps:g}")
    return eps


def _check_upsampfac(upsampfac):
    if isinstance(upsampfac, bool) or not isinstance(upsampfac, numbers.Real):
        raise TypeError(f"`upsampfac` must be a number, got {type(upsampfac).__name__}")
    if float(upsampfac) not in UPSAMPFACS:
        raise ValueError(f"`upsampfac` must be 2.0, 1.5 or 1.25, got {upsampfac!r}")
    return float(upsampfac)


def _check_kernel(kernel):
    if kernel not in KERNELS:
        raise ValueError(f"`kernel` must be one of {KERNELS}, got {kernel!r}")
    return kernel


def _check_isign(isign, default):
    if isign is None:
        return default
    if isinstance(isign, bool) or not isinstance(isign, numbers.Integral):
        raise TypeError(f"`isign` must be +1 or -1, got {type(isign).__name__}")
    if int(isign) not in (1, -1):
        raise ValueError(f"`isign` must be +1 or -1, got {isign}")
    return int(isign)


def _check_n_modes(n_modes):
    return ensure_sizes("n_modes", n_modes, 3, low=1)


def _check_grid_fits(n_modes, w, upsampfac, itemsize, n_trans=1):
    """Refuse, before any fine grid is sized or allocated, modes or a fine grid larger than the
    host's memory (sizes in Python integers: 10**30 modes answer at once)."""
    modes = math.prod(n_modes) * itemsize
    ensure_fits("n_modes", modes, f"the modes of one vector {fmt_sizes(n_modes)}", available=_host_available_bytes(),
                fraction=0.5)
    num, den = (5, 4) if upsampfac == 1.25 else (int(upsampfac), 1)
    fine = math.prod(max(-(-n * num // den), 2 * w) for n in n_modes) * itemsize
    ensure_fits("n_modes", 3 * fine + modes, f"the fine grid of about sigma*N = {upsampfac:g}*{fmt_sizes(n_modes)} "
                "with its FFT; lower n_modes, raise eps or use upsampfac=1.25", available=_host_available_bytes())


def _check_method(method):
    if method not in ("gather", "scatter"):
        raise ValueError(f"`method` must be 'gather' or 'scatter', got {method!r}")
    return method


def _check_points(x, y, z):
    pts = []
    for name, a in (("x", x), ("y", y), ("z", z)):
        a = ensure_array(name, a, dtypes=(np.float32, np.float64), ndim=1)
        pts.append(a)
    dts = {np.dtype(a.dtype) for a in pts}
    if len(dts) != 1:
        raise TypeError(
            "`x`, `y`, `z` must share one dtype (float32 or float64), got "
            + ", ".join(np.dtype(a.dtype).name for a in pts)
        )
    m = int(pts[0].shape[0])
    for name, a in zip("yz", pts[1:]):
        if int(a.shape[0]) != m:
            raise ValueError(f"`{name}` has {a.shape[0]} points but `x` has {m}")
    ensure_nonempty("x", pts[0])
    devs = {is_device_array(a) for a in pts}
    if len(devs) != 1:
        raise TypeError("`x`, `y`, `z` must all be host arrays or all device arrays")
    for name, a in zip("xyz", pts):
        ensure_finite(name, a)
        xp = array_module(a)
        if xp is not None:
            lim = 3.0 * math.pi
            if bool((a < -lim).any()) or bool((a >= lim).any()):
                raise ValueError(f"`{name}` must lie in [-3*pi, 3*pi)")
    return pts




def _check_values(name, a, complex_dtype, ndim_one, trailing):
    """Validate data of one vector (ndim_one dims) or several (ndim_one + 1); return (array, V, batched)."""
    a = ensure_array(name, a, dtypes=(np.complex64, np.complex128), ndim=(ndim_one, ndim_one + 1))
    if np.dtype(a.dtype) != complex_dtype:
        raise TypeError(
            f"`{name}` must have dtype {complex_dtype.name} to match the points' precision, got {np.dtype(a.dtype).name}"
        )
    batched = a.ndim == ndim_one + 1
    if tuple(a.shape[1:] if batched else a.shape) != tuple(trailing):
        want = "(V, " + ", ".join(map(str, trailing)) + ")"
        raise ValueError(f"`{name}` must have shape {tuple(trailing)} or {want}, got {tuple(a.shape)}")
    ensure_nonempty(name, a)
    ensure_finite(name, a)
    _check_magnitude(name, a, math.prod(int(n) for n in trailing))
    return a, (int(a.shape[0]) if batched else 1), batched


#: sums of `count` values times the deconvolution (at most ~1e6 for w <= 16) stay below this
#: fraction of the largest float, so no transform of accepted values overflows to Inf/NaN
_OVERFLOW_MARGIN = 1e-12


def _check_magnitude(name, a, count):
    """Refuse values so large that the transform's sums could overflow the precision."""
    xp = array_module(a)
    if xp is None or a.size == 0:
        return
    amax = float(xp.abs(a).max())
    limit = _OVERFLOW_MARGIN * float(np.finfo(_shared.real_dtype(np.dtype(a.dtype))).max)
    if amax * count > limit:
        raise ValueError(f"`{name}` holds values up to {amax:.3g}: summed over {count} terms they can overflow "
                         f"{np.dtype(a.dtype).name}; rescale them")


# ----------------------------------------------------------------------------- memory


_host_available_bytes = host_available_bytes  # one reading of MemAvailable (spkernels._arrays)


def _device_available_bytes() -> int:
    try:
        import cupy

        free, _ = cupy.cuda.runtime.memGetInfo()
        return int(free + cupy.get_default_memory_pool().free_bytes())
    except Exception:  # no CuPy (simulator) or no device: do not block on an unknown
        return _host_available_bytes()


def _workers() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# ----------------------------------------------------------------------------- dispatch


def _family_unavailable(name: str) -> str | None:
    """Why backend `name` cannot run this family (beyond the registry's own checks), or None."""
    return _backends.load(name, "nufft").why_unavailable()


def _resolve(backend, on_device):
    if backend == "auto":
        ok = [b for b in _backends.BACKENDS if not _backends.is_available(b) or _family_unavailable(b) is None]
        return _backends.resolve("auto", on_device=on_device, supported=ok)
    name = _backends.resolve(backend, on_device=on_device)
    why = _family_unavailable(name)
    if why is not None:
        raise BackendUnavailableError(f"backend {name!r} cannot run the NUFFT: {why}")
    return name


# ----------------------------------------------------------------------------- shared steps


def _fold(a, xp):
    two_pi = a.dtype.type(2.0 * math.pi)
    pi = math.pi
    return xp.where(a < -pi, a + two_pi, xp.where(a >= pi, a - two_pi, a))


def _as_module(a, xp):
    """`a` as a C-contiguous array of module `xp` (host copy of a simulated device array)."""
    if xp is np:
        if is_device_array(a):
            a = to_host(a)
        return np.ascontiguousarray(a)
    return xp.ascontiguousarray(xp.asarray(a))


_GRID_TABLES: dict = {}  # (grid shapes, kernel, dtype, module) -> (correction, index arrays)


def _grid_tables(plan, xp):
    """A plan's deconvolution factors and mode indices in module `xp`, made once per process
    for each grid shape, kernel and module: a GPU pipeline makes one plan per batch of a shape,
    and uploads these tables once instead of every batch."""
    key = (plan.n_modes, plan.n_fine, plan.w, plan.beta, getattr(plan, "kernel", None), plan.real_dtype.str, id(xp))
    hit = _GRID_TABLES.get(key)
    if hit is None or hit[0] is not xp:
        if len(_GRID_TABLES) >= 32:  # a few shapes per run; drop the oldest
            _GRID_TABLES.pop(next(iter(_GRID_TABLES)))
        hit = _GRID_TABLES[key] = (xp, plan._correction(xp), plan._index(xp))
    return hit[1], hit[2]


def _fft(a, isign, xp):
    """Unnormalised FFT over the last three axes, exponent sign `isign` (scipy.fft or CuPy's)."""
    if xp is np:
        import scipy.fft

        if isign < 0:
            return scipy.fft.fftn(a, axes=(1, 2, 3), workers=_workers(), overwrite_x=True)
        return scipy.fft.ifftn(a, axes=(1, 2, 3), norm="forward", workers=_workers(), overwrite_x=True)
    if isign < 0:
        return xp.fft.fftn(a, axes=(1, 2, 3))
    return xp.fft.ifftn(a, axes=(1, 2, 3), norm="forward")


def _host(a, xp):
    return a if xp is np else a.get()


# ----------------------------------------------------------------------------- plan


class Plan:
    """A reusable 3-D NUFFT: parameters fixed at construction, points set once, many executes.

    Parameters
    ----------
    nufft_type : {1, 2}
        1: values at points -> Fourier modes (insertion); 2: modes -> values at points (slicing).
    n_modes : tuple of 3 ints
        (N1, N2, N3); modes ``-N//2 .. (N-1)//2`` per axis, axis 0 <-> x.
    eps : float
        Requested relative l2 accuracy, in [1e-7, 1) for complex64 and [1e-15, 1) for complex128.
    isign : {+1, -1}, optional
        Sign of the exponent; default +1 for type 1, -1 for type 2 (finufft's).
    dtype : str or dtype
        "complex128" (float64 points) or "complex64" (float32 points).
    n_trans : int
        Number of vectors transformed per :meth:`execute` at the same points.
    backend : str
        "auto", "cuda", "numba-cuda", "cpu", "numba-cpu" or "numpy" (direct sum).
    method : {"gather", "scatter"}, optional
        Type-1 spreading: output-driven and deterministic, or the atomic/point-driven baseline.
        None (default): the method :mod:`spkernels.tuning` stored for this machine and size
        (only ``spkernels tune --nondeterministic`` stores scatter, when it matched gather's
        result within `eps` and was faster), else ``"gather"``.
    upsampfac : {2.0, 1.5, 1.25}
        Fine-grid oversampling sigma.
    kernel : {"pswf", "es"}
        Spreading kernel: the prolate spheroidal wave function (default, finufft 2.5's) or the
        exponential of semicircle (finufft up to 2.4); see the module docstring.

    Examples
    --------
    >>> plan = Plan(2, (32, 32, 32), eps=1e-6)            # doctest: +SKIP
    >>> plan.setpts(x, y, z)                               # doctest: +SKIP
    >>> c = plan.execute(f)                                # doctest: +SKIP
    """

    def __init__(self, nufft_type, n_modes, *, eps=1e-6, isign=None, dtype="complex128", n_trans=1,
                 backend="auto", method=None, upsampfac=2.0, kernel="pswf"):
        self.type = ensure_int("nufft_type", nufft_type, low=1, high=2, what="type 1 or type 2")
        self.n_modes = _check_n_modes(n_modes)
        self.real_dtype = _real_dtype(dtype, "dtype")
        self.dtype = _shared.complex_dtype(self.real_dtype)
        self.eps = _check_eps(eps, self.real_dtype)
        self.isign = _check_isign(isign, 1 if self.type == 1 else -1)
        self.n_trans = ensure_int("n_trans", n_trans, low=1)
        self._method_explicit = method is not None
        self.method = _check_method("gather" if method is None else method)
        self.upsampfac = _check_upsampfac(upsampfac)
        self.kernel = _check_kernel(kernel)
        self.w, self.beta = kernel_params(self.eps, self.real_dtype, self.upsampfac, self.kernel)
        _check_grid_fits(self.n_modes, self.w, self.upsampfac, self.dtype.itemsize)
        # every execute holds n_trans mode grids (type 1's output, type 2's input)
        ensure_fits("n_trans", self.n_trans * math.prod(self.n_modes) * self.dtype.itemsize,
                    f"the modes of n_trans={fmt_int(self.n_trans)} vectors of {self.n_modes}",
                    available=_host_available_bytes())
        self.n_fine = fine_grid_size(self.n_modes, self.w, self.upsampfac)
        if not isinstance(backend, str):
            raise TypeError(f"`backend` must be a string, got {type(backend).__name__}")
        self._requested = backend
        self.backend = _resolve(backend, on_device=False) if backend != "auto" else None
        if self.backend is not None:  # fail on an impossible grid before any points are given
            impl = _backends.load(self.backend, "nufft")
            self._vector_batch(self.n_trans, impl.array_module() is not np, impl.EXACT)
        self._points = None
        log.debug("nufft plan type %d modes %s eps %g: w=%d beta=%.3f fine grid %s", self.type, self.n_modes,
                  self.eps, self.w, self.beta, self.n_fine)

    # --- helpers ---------------------------------------------------------------------------

    def _grid_bytes(self):
        return int(np.prod(self.n_fine)) * self.dtype.itemsize

    def _vector_batch(self, nv, gpu, exact):
        """Vectors per pass: all when they fit, else as many as fit; ValueError when one does not."""
        avail = _device_available_bytes() if gpu else _host_available_bytes()
        gib = 1 << 30
        modes = int(np.prod(self.n_modes)) * self.dtype.itemsize
        if modes > avail // 2:
            raise ValueError(f"`n_modes`={self.n_modes} needs {modes / gib:.1f} GiB per vector, more than half "
                             f"of the {avail / gib:.1f} GiB available")
        if exact:  # the direct sum has no fine grid
            return nv
        need = 3 * self._grid_bytes() + modes  # fine grid, FFT output, extraction slack, modes
        if need > avail:
            raise ValueError(
                f"`n_modes`={self.n_modes} needs a fine grid of {self.n_fine} ({need / gib:.1f} GiB with the FFT), "
                f"more than the {avail / gib:.1f} GiB available; lower n_modes, raise eps or use upsampfac=1.25"
            )
        return max(1, min(nv, int(0.6 * avail) // need))

    def _point_chunk(self, gpu):
        if _POINT_CHUNK_OVERRIDE:
            return int(_POINT_CHUNK_OVERRIDE)
        if not gpu:
            limit = self._impl.max_points(self.w)
            return min(_HOST_POINT_CHUNK, limit) if limit else _HOST_POINT_CHUNK
        per_point = 3 * self.real_dtype.itemsize + 4 * 8 + 2 * self.n_trans * self.dtype.itemsize
        return max(1 << 16, int(0.25 * _device_available_bytes()) // per_point)

    def _correction(self, xp):
        p = [kernel_fourier(N, n, self.w, self.beta) for N, n in zip(self.n_modes, self.n_fine)]
        corr = 1.0 / (p[0][:, None, None] * p[1][None, :, None] * p[2][None, None, :])
        return xp.asarray(corr.astype(self.real_dtype))

    def _index(self, xp):
        i1, i2, i3 = (xp.asarray(_mode_indices(N) % n) for N, n in zip(self.n_modes, self.n_fine))
        return i1[:, None, None], i2[None, :, None], i3[None, None, :]

    def _tuned_bins(self, impl, m):
        """Bin target for :func:`_bin_size`; sets the type-1 spreading method when the caller gave none.

        Both from ``spkernels.tuning`` (family ``nufft``: ``bin_target``, ``method``) for this
        backend, precision and size class, else the backend's ``BIN_TARGET`` and ``"gather"``.
        """
        from ..tuning import active, sizes

        cfg = active.current("nufft", self.backend, self.dtype.name, sizes.nufft(self.type, self.w, self.n_fine, m))
        if not self._method_explicit:
            self.method = active.value(cfg, "method", "gather", lambda v: v in ("gather", "scatter"), "nufft")
        return active.value(cfg, "bin_target", impl.BIN_TARGET, lambda v: active.is_int(v, 1, impl.BIN_MAX), "nufft")

    # --- public ----------------------------------------------------------------------------

    def setpts(self, x, y, z):
        """Set (fold, validate, bin and sort) the nonuniform points; reused by every execute.

        Parameters
        ----------
        x, y, z : 1-D arrays of equal length, float32 or float64 (the plan's precision), in
            [-3 pi, 3 pi). Host or GPU arrays (the latter need a GPU backend).
        """
        x, y, z = _check_points(x, y, z)
        if np.dtype(x.dtype) != self.real_dtype:
            raise TypeError(f"`x`, `y`, `z` must be {self.real_dtype.name} for a {self.dtype.name} plan, "
                            f"got {np.dtype(x.dtype).name}")
        on_device = is_device_array(x)
        if self.backend is None or on_device:
            self.backend = _resolve(self._requested, on_device=on_device)
        self._on_device = on_device
        impl = _backends.load(self.backend, "nufft")
        self._impl = impl
        m = int(x.shape[0])
        if impl.EXACT:
            self._vector_batch(self.n_trans, False, True)
            self._points = tuple(to_host(a) for a in (x, y, z))
            self.m = m
            return self
        xp = impl.array_module()
        gpu = xp is not np
        self._gpu = gpu
        target = self._tuned_bins(impl, m)
        self.bin_size = tuple(_bin_size(n, self.w, target, impl.BIN_MAX) for n in self.n_fine)
        self._vb = self._vector_batch(self.n_trans, gpu, False)  # fails early if one grid does not fit
        step = self._point_chunk(gpu)
        chunks = []
        for lo in range(0, m, step):
            hi = min(m, lo + step)
            pts = tuple(xp.ascontiguousarray(_fold(_as_module(a[lo:hi], xp), xp)) for a in (x, y, z))
            perm, offs = impl.setpts(*pts, self.n_fine, self.bin_size)
            chunks.append((lo, hi, pts, perm, offs))
        self._chunks = chunks
        self._points = True
        self.m = m
        return self

    def execute(self, data, out=None):
        """Run the transform at the points set by :meth:`setpts`.

        Parameters
        ----------
        data : array
            Type 1: values ``c`` of shape (M,) or (n_trans, M); type 2: modes ``f`` of shape
            (N1, N2, N3) or (n_trans, N1, N2, N3). dtype = the plan's.
        out : array, optional
            Where to write the result (shape (N1, N2, N3)/(n_trans, ...) or (M,)/(n_trans, M)).

        Returns
        -------
        array
            Type 1: modes; type 2: values at the points. NumPy for NumPy data, a GPU array for
            GPU data.
        """
        if self._points is None:
            raise ValueError("call `setpts` before `execute`")
        if self.type == 1:
            data, nv, batched = _check_values("c", data, self.dtype, 1, (self.m,))
        else:
            data, nv, batched = _check_values("f", data, self.dtype, 3, self.n_modes)
        if nv != self.n_trans:
            raise ValueError(f"`{'c' if self.type == 1 else 'f'}` holds {nv} vectors but the plan has n_trans={self.n_trans}")
        data_on_device = is_device_array(data)
        if data_on_device and self.backend not in _backends.GPU_BACKENDS:
            raise ValueError(f"data is a GPU array but the plan's backend {self.backend!r} runs on the CPU")
        if not batched:
            data = data[None]
        impl = self._impl
        if impl.EXACT:
            x, y, z = self._points
            d = to_host(data)
            res = (impl.direct_type1(x, y, z, d, self.n_modes, self.isign) if self.type == 1
                   else impl.direct_type2(x, y, z, d, self.isign)).astype(self.dtype)
        else:
            xp = impl.array_module()
            res = self._execute_grid(impl, xp, data)
            if not data_on_device:
                res = _host(res, xp)
            elif xp is np:  # simulator: hand back a (simulated) device array
                from numba import cuda

                res = cuda.to_device(res)
        if not batched:
            res = res[0]
        if out is not None:
            if not hasattr(out, "shape") or not hasattr(out, "dtype"):
                raise TypeError(f"`out` must be an array, got {type(out).__name__}")
            if isinstance(out, np.ndarray) and not out.flags.writeable:
                raise ValueError("`out` must be writeable, got a read-only array")
            if tuple(out.shape) != tuple(res.shape) or np.dtype(out.dtype) != self.dtype:
                raise ValueError(f"`out` must have shape {tuple(res.shape)} and dtype {self.dtype.name}, "
                                 f"got {tuple(out.shape)} {np.dtype(out.dtype).name}")
            out[...] = res
            return out
        return res

    def _execute_grid(self, impl, xp, data):
        """Spread / FFT / deconvolve (type 1) or the same backwards (type 2), vectors and points batched."""
        data = _as_module(data, xp)
        nv = int(data.shape[0])
        if getattr(self, "_corr_xp", None) is not xp:  # once per plan (and array module)
            self._corr, self._idx = _grid_tables(self, xp)
            self._corr_xp = xp
        corr, idx = self._corr, self._idx
        if self.type == 1:
            res = xp.empty((nv, *self.n_modes), self.dtype)
        else:
            res = xp.empty((nv, self.m), self.dtype)
        for v0 in range(0, nv, self._vb):
            v1 = min(nv, v0 + self._vb)
            if self.type == 1:
                fine = None
                for lo, hi, pts, perm, offs in self._chunks:
                    c = xp.ascontiguousarray(data[v0:v1, lo:hi])
                    part = impl.spread(*pts, c, perm, offs, self.n_fine, self.bin_size, self.w, self.beta, self.method,
                                       max_bytes=None if self._gpu else _host_available_bytes() // 3)
                    if fine is None:
                        fine = part
                    else:
                        fine += part  # chunks in a fixed order: still deterministic
                fine = _fft(fine, self.isign, xp)
                res[v0:v1] = fine[(slice(None), *idx)] * corr
            else:
                fine = xp.zeros((v1 - v0, *self.n_fine), self.dtype)
                fine[(slice(None), *idx)] = data[v0:v1] * corr
                fine = xp.ascontiguousarray(_fft(fine, self.isign, xp))
                for lo, hi, pts, perm, offs in self._chunks:
                    res[v0:v1, lo:hi] = impl.interp(*pts, fine, perm, self.w, self.beta)
        return res


# ----------------------------------------------------------------------------- functions


def nufft3d1(x, y, z, c, n_modes, *, eps=1e-6, isign=+1, backend="auto", method=None, upsampfac=2.0, out=None,
             kernel="pswf"):
    """Type-1 3-D NUFFT: values at nonuniform points -> Fourier modes ("insertion").

    ``f[k1, k2, k3] = sum_j c[j] exp(isign * i * (k1 x[j] + k2 y[j] + k3 z[j]))``.

    Parameters
    ----------
    x, y, z : 1-D float32 or float64 arrays of length M, in [-3 pi, 3 pi)
    c : complex64 or complex128 array, (M,) or (V, M) for V vectors at the same points
    n_modes : tuple of 3 ints (N1, N2, N3)
    eps : float
        Relative l2 tolerance (>= 1e-7 single, >= 1e-15 double).
    isign : {+1, -1}
    backend : str
        "auto", "cuda", "numba-cuda", "cpu", "numba-cpu", "numpy" (direct sum).
    method : {"gather", "scatter"}, optional
        Spreading: output-driven deterministic gather, or the point-driven baseline; None: the
        tuned method, else gather (see :class:`Plan`).
    upsampfac : {2.0, 1.5, 1.25}
    out : array, optional
    kernel : {"pswf", "es"}
        Spreading kernel (see :class:`Plan`).

    Returns
    -------
    f : array of shape (N1, N2, N3) or (V, N1, N2, N3), dtype of `c`

    Raises
    ------
    TypeError
        Wrong or mixed dtypes.
    ValueError
        NaN/Inf, empty or mismatched inputs, bad n_modes/eps/isign, or a fine grid that does not
        fit in memory.
    """
    x, y, z = _check_points(x, y, z)
    cdt = _shared.complex_dtype(x.dtype)
    c, nv, _ = _check_values("c", c, cdt, 1, (int(x.shape[0]),))
    plan = Plan(1, n_modes, eps=eps, isign=isign, dtype=cdt, n_trans=nv, backend=backend, method=method,
                upsampfac=upsampfac, kernel=kernel)
    plan.setpts(x, y, z)
    return plan.execute(c, out=out)


def nufft3d2(x, y, z, f, *, eps=1e-6, isign=-1, backend="auto", upsampfac=2.0, out=None, kernel="pswf"):
    """Type-2 3-D NUFFT: Fourier modes -> values at nonuniform points ("slicing").

    ``c[j] = sum_k f[k1, k2, k3] exp(isign * i * (k1 x[j] + k2 y[j] + k3 z[j]))``.

    Parameters
    ----------
    x, y, z : 1-D float32 or float64 arrays of length M, in [-3 pi, 3 pi)
    f : complex64 or complex128 array, (N1, N2, N3) or (V, N1, N2, N3)
    eps, isign, backend, upsampfac, out, kernel
        As in :func:`nufft3d1` (default isign -1).

    Returns
    -------
    c : array of shape (M,) or (V, M), dtype of `f`

    Raises
    ------
    TypeError, ValueError
        As in :func:`nufft3d1`.
    """
    x, y, z = _check_points(x, y, z)
    cdt = _shared.complex_dtype(x.dtype)
    f = ensure_array("f", f, dtypes=(np.complex64, np.complex128), ndim=(3, 4))
    n_modes = tuple(int(s) for s in f.shape[-3:])
    f, nv, _ = _check_values("f", f, cdt, 3, n_modes)
    plan = Plan(2, n_modes, eps=eps, isign=isign, dtype=cdt, n_trans=nv, backend=backend, upsampfac=upsampfac,
                kernel=kernel)
    plan.setpts(x, y, z)
    return plan.execute(f, out=out)
