"""A drop-in for finufft's Python interface, types 1 and 2: ``import spkernels.finufft as finufft``.

Same names, signatures (positional order included), shapes, dtypes, options and errors as
finufft 2.5 for ``nufft{1,2,3}d1``, ``nufft{1,2,3}d2`` and ``Plan`` of type 1 or 2, running on
:mod:`spkernels.kernels.nufft` (any of our backends; ``backend=`` is our one extra argument and
keyword-only). 3-D is the target; 1-D and 2-D problems run as 3-D ones with unit axes
(correct, but the kernel is still spread in three dimensions, so they are not fast).

What follows finufft exactly:

- ``Plan(nufft_type, n_modes_or_dim, n_trans=1, eps=1e-6, isign=None, dtype="complex128",
  **kwargs)`` with ``setpts``, ``execute``, ``execute_adjoint`` and the read-only properties
  ``type``, ``dim``, ``n_modes``, ``n_trans``, ``dtype``;
- ``isign`` by its sign (>= 0: +1); points anywhere finite are folded into [-pi, pi);
- ``eps`` below what the precision reaches is clamped, with finufft's warning
  ("FINUFFT eps tolerance too small to achieve"), also when the width rule is clipped at 16;
- ``n_modes`` of type 1 taken from ``out``; ``n_modes`` given as one integer for every axis;
- ``modeord`` 0 (modes ``-N//2 .. (N-1)//2``) and 1 (FFT order, ``numpy.fft.ifftshift``);
- ``upsampfac`` 0 (automatic: finufft's 3-D rule from the point density, eps, precision and
  thread count), 1.25, 1.5 or 2 (other values > 1 are a ``ValueError``: we have no kernel rule
  for them; <= 1 is finufft's error);
- ``spread_kerformula`` 0 (default) or 8: the PSWF kernel finufft 2.5 uses; 1: its legacy ES
  kernel (finufft <= 2.4); other values are a ``ValueError`` (kernels we do not implement);
- options that mean nothing here are accepted and ignored: ``debug``, ``spread_debug``,
  ``showwarn``, ``nthreads`` (only read by ``upsampfac=0``), ``fftw``, ``spread_sort``,
  ``spread_kerevalmeth``, ``spread_kerpad``, ``spread_thread`` (0, 1 or 2; others are finufft's
  error), ``maxbatchsize``, ``spread_nthr_atomic``, ``spread_max_sp_size``;
  ``spreadinterponly=1`` is a ``ValueError`` (not implemented); the FFTW lock functions are a
  ``TypeError`` as in finufft; an unknown option is warned about as finufft does;
- size, shape and dtype errors: finufft's ``RuntimeError`` / ``TypeError`` with its messages;
  non-C-contiguous input is copied with finufft's warning, an ``out`` that is not C-contiguous
  and writeable is a ``TypeError``.

Type 3 is not implemented (``NotImplementedError``).
"""

from __future__ import annotations

import math
import numbers
import os
import warnings

import numpy as np

from .kernels import nufft as _nufft

__all__ = ["Plan", "nufft1d1", "nufft1d2", "nufft2d1", "nufft2d2", "nufft3d1", "nufft3d2"]

#: finufft's options and their defaults (finufft_default_opts); all are accepted
DEFAULT_OPTS = {
    "modeord": 0, "spreadinterponly": 0, "debug": 0, "spread_debug": 0, "showwarn": 1, "nthreads": 0,
    "fftw": 64, "spread_sort": 2, "spread_kerevalmeth": 1, "spread_kerpad": 1, "upsampfac": 0.0,
    "spread_thread": 0, "maxbatchsize": 0, "spread_nthr_atomic": -1, "spread_max_sp_size": 0,
    "spread_kerformula": 0,
}
#: options accepted for compatibility that change nothing here
IGNORED_OPTS = ("debug", "spread_debug", "showwarn", "nthreads", "fftw", "spread_sort", "spread_kerevalmeth",
                "spread_kerpad", "spread_thread", "maxbatchsize", "spread_nthr_atomic", "spread_max_sp_size")
_LOCKS = ("fftw_lock_fun", "fftw_unlock_fun", "fftw_lock_data")
_EPS_WARNING = "FINUFFT eps tolerance too small to achieve"


# ----------------------------------------------------------------------------- options


def _options(kwargs):
    opts = dict(DEFAULT_OPTS)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        for key, value in kwargs.items():
            if key in _LOCKS:
                raise TypeError(f"Invalid option '{key}': FFTW locks are not exposed in Python")
            if key not in opts:
                warnings.warn('Warning: finufft_opts does not have attribute "' + key + '"', Warning, stacklevel=3)
                continue
            if key == "upsampfac":
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise TypeError(f"`upsampfac` must be a number, got {type(value).__name__}")
                opts[key] = float(value)
            else:
                if not isinstance(value, numbers.Integral):  # what ctypes' c_int field refuses
                    raise TypeError(f"option `{key}` must be an integer, got {type(value).__name__}")
                opts[key] = int(value)
    if opts["modeord"] not in (0, 1):
        raise ValueError(f"option `modeord` must be 0 or 1, got {opts['modeord']}")
    if opts["spreadinterponly"]:
        raise ValueError("option `spreadinterponly=1` (spreading or interpolation only) is not implemented")
    if opts["spread_thread"] not in (0, 1, 2):
        raise RuntimeError("FINUFFT spread_thread option invalid")
    if opts["spread_kerformula"] not in (0, 1, 8):
        raise ValueError("option `spread_kerformula` must be 0 or 8 (PSWF, the default) or 1 (legacy ES), "
                         f"got {opts['spread_kerformula']}")
    up = opts["upsampfac"]
    if up != 0.0:
        if not up > 1.0:
            raise RuntimeError("FINUFFT opts.upsampfac not > 1.0")
        if up not in _nufft.UPSAMPFACS:
            raise ValueError(f"option `upsampfac` must be 0 (automatic), 1.25, 1.5 or 2.0 here, got {up:g}")
    return opts


def _threads(opts):
    if opts["nthreads"] > 0:
        return opts["nthreads"]
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def auto_upsampfac(single, dim, nufft_type, eps, density, nthreads):
    """finufft 2.5's automatic sigma (its FFTW rules) for a type 1 or 2 transform.

    2.0 at eps <= 1e-9 or within two digits of the machine epsilon; else 2.0 where the rule for
    (precision, dim, type, density = points per mode, thread count) says the wider grid is
    faster, 1.25 otherwise.
    """
    mach = np.finfo(np.float32 if single else np.float64).eps
    if eps <= 1e-9 or eps <= 100 * mach:
        return 2.0
    if nthreads > 1:
        if single:
            return 2.0 if (dim == 3 and nufft_type == 1 and eps <= 1e-6 and density >= 32) else 1.25
        if dim != 3:
            return 1.25
        rules = ([(16, 1e-5), (8, 1e-7), (2, 1e-8), (1, 1e-9)] if nufft_type == 1
                 else [(16, 1e-5), (8, 1e-6), (4, 1e-7), (2, 1e-8), (1, 1e-9)])
    elif single:
        if nufft_type == 1:
            rules = {2: [(32, 1e-5)], 3: [(2, 1e-5)]}.get(dim, [])
        else:
            if dim == 3:
                return 2.0
            rules = [(8, 1e-5)] if dim == 1 else []
    else:
        if nufft_type == 1:
            rules = {2: [(32, 1e-6), (16, 1e-7), (8, 1e-8)],
                     3: [(16, 1e-3), (2, 1e-5), (1, 1e-7), (0, 1e-8)]}.get(dim, [])
        else:
            rules = {1: [(4, 1e-9)], 2: [(32, 1e-7)],
                     3: [(8, 1e-3), (4, 1e-4), (1, 1e-5), (0.5, 1e-7), (0.25, 1e-8)]}[dim]
    return 2.0 if any(density >= d and eps <= e for d, e in rules) else 1.25


# ----------------------------------------------------------------------------- array checks (finufft's)


def _ensure_array_type(x, name, dtype, output=False):
    if x is None:
        return None
    if not isinstance(x, np.ndarray):
        raise TypeError(f"Argument `{name}` must be a NumPy array, got {type(x).__name__}")
    if x.dtype != dtype:
        raise TypeError(f"Argument `{name}` does not have the correct dtype: {x.dtype} was given, "
                        f"but {np.dtype(dtype)} was expected.")
    for prop in (("C", "W") if output else ("C",)):
        if not x.flags[prop]:
            if output:
                raise TypeError(f"Argument `{name}` does not satisfy the following requirement: {prop}")
            warnings.warn(f"Argument `{name}` does not satisfy the following requirement: {prop}. "
                          "Copying array (this may reduce performance)", stacklevel=3)
            x = np.array(x, dtype=dtype, order="C")
    return x


def _valid_cshape(cshape, xsize, n_trans):
    if n_trans == 1:
        if len(cshape) != 1 and len(cshape) != 2:
            raise RuntimeError("FINUFFT c.ndim must be 1 or 2 if n_trans == 1")
        if cshape[-1] != xsize or np.prod(cshape) != xsize:
            raise RuntimeError("FINUFFT c.size must be same as x.size if n_trans == 1")
    else:
        if len(cshape) != 2:
            raise RuntimeError("FINUFFT c.ndim must be 2 if n_trans > 1")
        if cshape[1] != xsize or cshape[0] != n_trans:
            raise RuntimeError("FINUFFT c.shape must be (n_trans, x.size) if n_trans > 1")


def _valid_fshape(fshape, n_trans, dim, n_modes):
    if n_trans == 1:
        if len(fshape) != dim and len(fshape) != dim + 1:
            raise RuntimeError("FINUFFT f.ndim must be same as the problem dimension or the problem dimension + 1 "
                               "for type 1 or 2 if n_trans == 1")
        if len(fshape) == dim + 1 and fshape[0] != n_trans:
            raise RuntimeError("FINUFFT f.shape[0] must be 1 for type 1 or 2 if n_trans == 1 and "
                               "len(f.shape) == dim+1")
    else:
        if len(fshape) != dim + 1:
            raise RuntimeError("FINUFFT f.ndim must be same as the problem dimension + 1 for type 1 or 2 if n_trans > 1")
        if fshape[0] != n_trans:
            raise RuntimeError("FINUFFT f.shape[0] must be n_trans for type 1 or 2 if n_trans > 1")
    if tuple(fshape[-dim:]) != tuple(n_modes):
        raise RuntimeError("FINUFFT f.shape is not consistent with n_modes")


def fold(a):
    """Any finite coordinate folded into [-pi, pi) (same dtype): ``x - 2 pi round(x / 2 pi)``."""
    if not np.all(np.isfinite(a)):
        raise ValueError("nonuniform points must be finite (NaN or Inf given)")
    if a.size and float(np.abs(a).max()) < math.pi:
        return a
    two_pi = 2.0 * math.pi
    r = (np.asarray(a, np.float64) + math.pi) % two_pi - math.pi
    r = r.astype(a.dtype)
    pi = a.dtype.type(math.pi)
    return np.where(r >= pi, -pi, np.where(r < -pi, -pi, r)).astype(a.dtype)


# ----------------------------------------------------------------------------- plan


class Plan:
    """A finufft-compatible NUFFT plan of type 1 or 2 (see the module docstring).

    Parameters
    ----------
    nufft_type : {1, 2}
        1: nonuniform points -> modes; 2: modes -> points (3 raises ``NotImplementedError``).
    n_modes_or_dim : int or tuple of 1 to 3 ints
        Modes per axis (N1[, N2[, N3]]), output/input shape in C order.
    n_trans : int, optional
        Vectors per execute.
    eps : float, optional
        Relative tolerance (clamped, with a warning, where the precision cannot reach it).
    isign : int, optional
        Sign of the exponent by its sign; default +1 for type 1, -1 for type 2.
    dtype : {"complex128", "complex64"}
    backend : str, keyword-only
        Our backend ("auto", "cpu", "numba-cpu", "cuda", "numba-cuda", "numpy").
    **kwargs
        finufft options (module docstring).
    """

    def __init__(self, nufft_type, n_modes_or_dim, n_trans=1, eps=1e-6, isign=None, dtype="complex128", *,
                 backend="auto", **kwargs):
        if isign is None:
            isign = -1 if nufft_type == 2 else 1
        opts = _options(kwargs)
        try:
            cdt = np.dtype(dtype)
        except TypeError:
            raise RuntimeError("FINUFFT dtype(precision type) must be single or double") from None
        if cdt not in (np.dtype(np.complex64), np.dtype(np.complex128)):
            raise RuntimeError("FINUFFT dtype(precision type) must be single or double")
        if nufft_type == 3:
            raise NotImplementedError("spkernels.finufft implements types 1 and 2; type 3 is not implemented")
        if isinstance(nufft_type, bool) or nufft_type not in (1, 2):
            raise RuntimeError("FINUFFT transform type invalid")
        modes = np.asarray(n_modes_or_dim)
        if modes.size > 3 or modes.size < 1:
            raise RuntimeError("FINUFFT n_modes dimension must be 1, 2, or 3")
        if not np.issubdtype(modes.dtype, np.integer):
            raise TypeError(f"`n_modes_or_dim` must hold integers, got {modes.dtype}")
        n_modes = tuple(int(n) for n in modes.ravel())
        if min(n_modes) < 1:
            raise ValueError(f"`n_modes_or_dim` entries must be >= 1, got {n_modes}")
        if isinstance(n_trans, bool) or not isinstance(n_trans, numbers.Integral) or n_trans < 1:
            raise RuntimeError("FINUFFT number of transforms ntrans invalid")
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not math.isfinite(eps):
            raise TypeError(f"`eps` must be a finite real number, got {eps!r}")
        if isinstance(isign, bool) or not isinstance(isign, numbers.Real):
            raise TypeError(f"`isign` must be a number, got {type(isign).__name__}")
        if not isinstance(backend, str):
            raise TypeError(f"`backend` must be a string, got {type(backend).__name__}")
        self._type = int(nufft_type)
        self._dim = len(n_modes)
        self._n_modes = n_modes
        self._n_trans = int(n_trans)
        self._dtype = cdt
        self._real = np.dtype(np.float32 if cdt == np.complex64 else np.float64)
        self._isign = 1 if isign >= 0 else -1
        self._opts = opts
        self._backend = backend
        self._kernel = "es" if opts["spread_kerformula"] == 1 else "pswf"
        self._eps = self._clamp_eps(float(eps))
        self._inner = {}
        self._nj = None
        if opts["upsampfac"] != 0.0:
            self._warn_width(opts["upsampfac"])
            self._make_inner(self._type, opts["upsampfac"])  # fail early on an impossible grid

    # --- read-only properties (finufft's) ---------------------------------------------------

    @property
    def type(self):
        """Transform type (1 or 2)."""
        return self._type

    @property
    def dtype(self):
        """Complex dtype of the data (complex64 or complex128)."""
        return self._dtype

    @property
    def dim(self):
        """Number of dimensions (length of ``n_modes``)."""
        return self._dim

    @property
    def n_modes(self):
        """Modes per axis, as given."""
        return self._n_modes

    @property
    def n_trans(self):
        """Vectors per execute."""
        return self._n_trans

    # --- helpers ------------------------------------------------------------------------------

    def _clamp_eps(self, eps):
        lo = max(float(np.finfo(self._real).eps), _nufft.EPS_MIN[self._real])
        if eps < lo:
            warnings.warn(f"{_EPS_WARNING} (eps={eps:g} raised to {lo:g} for "
                          f"{'single' if self._real == np.float32 else 'double'} precision)", Warning, stacklevel=3)
            return lo
        return min(eps, 0.5)

    def _warn_width(self, sigma):
        if self._kernel == "pswf" and _nufft.kernel_width(self._eps, self._real, sigma) > _nufft.MAX_WIDTH:
            warnings.warn(f"{_EPS_WARNING} (at upsampfac={sigma:g} eps={self._eps:g} would need a kernel wider than "
                          f"{_nufft.MAX_WIDTH} cells; clipped)", Warning, stacklevel=4)

    def _modes3(self):
        return tuple(self._n_modes) + (1,) * (3 - self._dim)

    def _make_inner(self, kind, sigma):
        key = (kind, sigma)
        if key not in self._inner:
            sign = self._isign if kind == self._type else -self._isign
            self._inner[key] = _nufft.Plan(kind, self._modes3(), eps=self._eps, isign=sign, dtype=self._dtype,
                                           n_trans=self._n_trans, backend=self._backend, upsampfac=sigma,
                                           kernel=self._kernel)
        return self._inner[key]

    def _sigma(self):
        if self._opts["upsampfac"] != 0.0:
            return self._opts["upsampfac"]
        density = self._nj / float(np.prod(self._n_modes))
        return auto_upsampfac(self._real == np.float32, self._dim, self._type, self._eps, density,
                              _threads(self._opts))

    def _inner_with_points(self, kind):
        sigma = self._sigma()
        plan = self._make_inner(kind, sigma)
        if getattr(plan, "_spk_points_id", None) != self._points_id:
            plan.setpts(*self._pts)
            plan._spk_points_id = self._points_id
        return plan

    # --- public -------------------------------------------------------------------------------

    def setpts(self, x=None, y=None, z=None, s=None, t=None, u=None):
        """Set the nonuniform points (one coordinate array per dimension; folded into [-pi, pi)).

        Parameters
        ----------
        x, y, z : 1-D arrays of the plan's real dtype (float32 for complex64), same length;
            only the first ``dim`` are used.
        s, t, u : ignored (type-3 targets; finufft ignores them for types 1 and 2 too).
        """
        coords = [_ensure_array_type(a, n, self._real) for a, n in zip((x, y, z), "xyz")]
        for i, name in enumerate("xyz"[:self._dim]):
            if coords[i] is None:
                raise RuntimeError(f"FINUFFT {name} must be a vector")
        if coords[0].ndim != 1:
            raise RuntimeError("FINUFFT x must be a vector")
        nj = coords[0].size
        for i, name in enumerate("yz"[:self._dim - 1], start=1):
            if coords[i].ndim != 1:
                raise RuntimeError(f"FINUFFT {name} must be a vector")
            if coords[i].size != nj:
                raise RuntimeError(f"FINUFFT {name} must have same length as x")
        if nj == 0:
            raise ValueError("`x` must hold at least one point")
        pts = [fold(np.ascontiguousarray(a)) for a in coords[:self._dim]]
        pts += [np.zeros(nj, self._real)] * (3 - self._dim)
        self._pts = tuple(pts)
        self._nj = nj
        self._points_id = object()
        self._inner_with_points(self._type)  # sort now, as finufft does

    def _run(self, kind, data, out, adjoint):
        if self._nj is None:
            raise RuntimeError("FINUFFT call setpts before execute")
        _data = _ensure_array_type(data, "data", self._dtype)
        if _data is None:
            raise TypeError("`data` must be a NumPy array, got None")
        _out = _ensure_array_type(out, "out", self._dtype, output=True)
        dim, nt, modes = self._dim, self._n_trans, self._n_modes
        if kind == 2:  # data are modes
            _valid_fshape(_data.shape, nt, dim, modes)
            if _out is not None:
                _valid_cshape(_out.shape, self._nj, nt)
            lead = _data.shape[:-dim]
            f = _data.reshape((nt,) + modes)
            if self._opts["modeord"] == 1:
                f = np.fft.fftshift(f, axes=tuple(range(1, dim + 1)))
            f = np.ascontiguousarray(f.reshape((nt,) + self._modes3()))
            res = self._inner_with_points(2).execute(f if nt > 1 else f[0])
            res = res.reshape(lead + (self._nj,))
        else:  # data are values at the points
            _valid_cshape(_data.shape, self._nj, nt)
            if _out is not None:
                _valid_fshape(_out.shape, nt, dim, modes)
            lead = _data.shape[:-1]
            c = np.ascontiguousarray(_data.reshape((nt, self._nj)))
            res = self._inner_with_points(1).execute(c if nt > 1 else c[0])
            res = res.reshape((nt,) + modes)
            if self._opts["modeord"] == 1:
                res = np.fft.ifftshift(res, axes=tuple(range(1, dim + 1)))
            res = res.reshape(lead + modes)
        if _out is None:
            return np.ascontiguousarray(res)
        _out[...] = res.reshape(_out.shape)
        return _out

    def execute(self, data, out=None):
        """Run the transform: type 1 values (M,)/(n_trans, M) -> modes; type 2 modes -> values.

        ``out`` (C-contiguous, writeable, of the result's shape) receives the result if given.
        Returns the result (``out`` itself when given).
        """
        return self._run(self._type, data, out, adjoint=False)

    def execute_adjoint(self, data, out=None):
        """The adjoint transform at the same points: for a type-1 plan, modes -> values (type 2
        with the opposite sign); for a type-2 plan, values -> modes (type 1, opposite sign)."""
        return self._run(3 - self._type, data, out, adjoint=True)


# ----------------------------------------------------------------------------- simple interface


def _invoke(dim, tp, pts, c, f, n_modes, eps, isign, backend, kwargs):
    x = pts[0]
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        raise RuntimeError("FINUFFT x dtype should be float64 for double precision or float32 for single precision")
    pdtype = "complex128" if x.dtype == np.float64 else "complex64"
    if n_modes is not None:
        if not isinstance(n_modes, (tuple, numbers.Integral)) or isinstance(n_modes, bool):
            raise RuntimeError("FINUFFT input n_modes must be a tuple or an integer")
        if isinstance(n_modes, tuple):
            if len(n_modes) != dim:
                raise RuntimeError("FINUFFT input n_modes dimension does not match problem dimension")
            if not all(isinstance(n, numbers.Integral) for n in n_modes):
                raise RuntimeError("FINUFFT all elements of input n_modes must be integer")
        else:
            n_modes = (int(n_modes),) * dim
    if tp == 1:
        if not isinstance(c, np.ndarray):
            raise TypeError(f"`c` must be a NumPy array, got {type(c).__name__}")
        n_trans = int(c.size / x.size) if x.size else 0
        if n_trans * x.size != c.size:
            raise RuntimeError("FINUFFT c.size must be divisible by x.size")
        _valid_cshape(c.shape, x.size, n_trans)
        if n_modes is None and f is None:
            raise RuntimeError("FINUFFT type 1 input must supply n_modes or output vector, or both")
        if f is not None:
            n_trans, n_modes = _valid_ntr_tp12(dim, f.shape, n_trans, n_modes)
    else:
        if not isinstance(f, np.ndarray):
            raise TypeError(f"`f` must be a NumPy array, got {type(f).__name__}")
        n_trans, n_modes = _valid_ntr_tp12(dim, f.shape, None, None)
    plan = Plan(tp, n_modes, n_trans, eps, isign, pdtype, backend=backend, **kwargs)
    plan.setpts(*pts)
    return plan.execute(c, f) if tp == 1 else plan.execute(f, c)


def _valid_ntr_tp12(dim, shape, n_trans_in, n_modes_in):
    if len(shape) == dim + 1:
        n_trans, n_modes = shape[0], tuple(shape[1:dim + 1])
    elif len(shape) == dim:
        n_trans, n_modes = 1, tuple(shape)
    else:
        raise RuntimeError("FINUFFT type 1 output dimension or type 2 input dimension must be either dim "
                           "(n_trans==1) or dim+1 (n_trans>=1)")
    if n_trans_in is not None and n_trans != n_trans_in:
        raise RuntimeError("FINUFFT input n_trans and output n_trans do not match")
    if n_modes_in is not None and tuple(n_modes) != tuple(n_modes_in):
        raise RuntimeError("FINUFFT input n_modes and output n_modes do not match")
    return n_trans, n_modes


def nufft3d1(x, y, z, c, n_modes=None, out=None, eps=1e-6, isign=1, *, backend="auto", **kwargs):
    """3-D type 1: ``f[k1, k2, k3] = sum_j c[j] exp(+/-i (k1 x[j] + k2 y[j] + k3 z[j]))``.

    finufft's signature: `n_modes` (int or 3-tuple) or `out` (whose shape gives it) must be
    given; `c` is (M,) or (n_trans, M). Returns (N1, N2, N3) or (n_trans, N1, N2, N3).
    """
    return _invoke(3, 1, (x, y, z), c, out, n_modes, eps, isign, backend, kwargs)


def nufft3d2(x, y, z, f, out=None, eps=1e-6, isign=-1, *, backend="auto", **kwargs):
    """3-D type 2: ``c[j] = sum_k f[k1, k2, k3] exp(+/-i (k1 x[j] + k2 y[j] + k3 z[j]))``.

    finufft's signature: `f` is (N1, N2, N3) or (n_trans, N1, N2, N3); returns (M,) or (n_trans, M).
    """
    return _invoke(3, 2, (x, y, z), out, f, None, eps, isign, backend, kwargs)


def nufft2d1(x, y, c, n_modes=None, out=None, eps=1e-6, isign=1, *, backend="auto", **kwargs):
    """2-D type 1 (finufft's signature), run as a 3-D transform with a unit third axis."""
    return _invoke(2, 1, (x, y), c, out, n_modes, eps, isign, backend, kwargs)


def nufft2d2(x, y, f, out=None, eps=1e-6, isign=-1, *, backend="auto", **kwargs):
    """2-D type 2 (finufft's signature), run as a 3-D transform with a unit third axis."""
    return _invoke(2, 2, (x, y), out, f, None, eps, isign, backend, kwargs)


def nufft1d1(x, c, n_modes=None, out=None, eps=1e-6, isign=1, *, backend="auto", **kwargs):
    """1-D type 1 (finufft's signature), run as a 3-D transform with unit second and third axes."""
    return _invoke(1, 1, (x,), c, out, n_modes, eps, isign, backend, kwargs)


def nufft1d2(x, f, out=None, eps=1e-6, isign=-1, *, backend="auto", **kwargs):
    """1-D type 2 (finufft's signature), run as a 3-D transform with unit second and third axes."""
    return _invoke(1, 2, (x,), out, f, None, eps, isign, backend, kwargs)
