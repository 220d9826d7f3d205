"""Fourier insertion of 2-D image spectra into a 3-D Fourier volume with a Kaiser–Bessel blob,
and its adjoint, extraction (slicing a 3-D Fourier volume at rotated planes).

The geometry (centred image spectra, half volume, rotations, the pairs a blob connects) is
stated once in :mod:`spkernels.backends.numpy.insertion`, the float64 reference and the family's
contract. In short, for images ``X_j`` (n, N, N), CTFs ``c_j`` and rotations ``R_j``, voxel ``k``
of the half volume gets ``V[k] += Σ_j Σ_pixels w · c · X`` and ``W[k] += Σ w · c²`` with
``w = blob(|R_j k - (u, v, 0)|)`` for pixels within the blob radius, voxels inside the sphere
``|k| <= max_freq``. :func:`extract` is the exact adjoint of the volume part, so
``<insert(x), v> = <x, extract(v)>`` to rounding.

Methods: ``"gather"`` (the default) is voxel-driven — per projection only the slab of voxels
within the blob radius of the rotated plane is visited, and each voxel sums its window of pixels
in registers and is written by one thread only: no atomics, bitwise deterministic for a given
backend. ``"scatter"`` is the pixel-driven baseline (atomics on the GPU; serial in Numba on the
CPU), kept for benchmarks.

The blob (radius 1.9 voxels of the padded grid, order 0, α = 15 by default) is tabulated in r²
(10 000 entries); every backend reads the same table. :func:`blob_fourier` is its 3-D Fourier
transform, the gridding correction of a reconstruction.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from .. import backends as _backends
from .._arrays import ensure_array, ensure_finite, ensure_int, ensure_nonempty, ensure_real, is_device_array
from ..backends import _shared

__all__ = ["Blob", "insert", "extract", "blob_fourier", "LaunchParams", "METHODS"]

METHODS = ("gather", "scatter")
SUPPORTED = ("cuda", "numba-cuda", "cpu", "numba-cpu", "numpy")


@dataclasses.dataclass(frozen=True)
class Blob:
    """A Kaiser–Bessel window ``b(r) = s^m I_m(α s) / I_m(α)``, ``s = sqrt(1 - (r/a)²)``, r < a.

    Attributes
    ----------
    radius : float
        ``a``, in voxels of the (padded) Fourier grid; default 1.9.
    alpha : float
        Shape ``α``; default 15.
    order : int
        Bessel order ``m``; default 0.
    table_size : int
        Samples of the table in r² (``r² = i · a² / (table_size - 1)``); default 10 000.
    """

    radius: float = 1.9
    alpha: float = 15.0
    order: int = 0
    table_size: int = 10000

    def __post_init__(self):
        ensure_real("radius", self.radius, low=0.5, high=8.0)
        ensure_real("alpha", self.alpha, low=0.0, high=100.0)
        ensure_int("order", self.order, low=0, high=4)
        ensure_int("table_size", self.table_size, low=16, high=1 << 22)

    @property
    def scale(self) -> float:
        """Multiplier turning a squared distance into a (fractional) table index."""
        return (self.table_size - 1) / (self.radius * self.radius)

    def value(self, r):
        """The blob at distances `r` (voxels), float64; zero at and beyond the radius."""
        import scipy.special

        r = np.asarray(r, dtype=np.float64)
        t = np.clip(1.0 - (r / self.radius) ** 2, 0.0, None)
        s = np.sqrt(t)
        out = s ** self.order * scipy.special.iv(self.order, self.alpha * s) / scipy.special.iv(self.order, self.alpha)
        return np.where(r < self.radius, out, 0.0)

    def table(self) -> np.ndarray:
        """The r²-sampled table (float64, ``table_size`` entries)."""
        return _table(self.radius, self.alpha, self.order, self.table_size)


@functools.lru_cache(maxsize=16)
def _table(radius, alpha, order, size):
    b = Blob(radius, alpha, order, size)
    r = np.sqrt(np.arange(size) / b.scale)
    t = b.value(r)
    t[-1] = b.value(np.array([radius * (1 - 1e-12)]))[0] if size > 1 else t[-1]
    t.setflags(write=False)
    return t


def blob_fourier(freq, blob: Blob = Blob(), n_quad: int = 256) -> np.ndarray:
    """3-D Fourier transform of `blob` at radial frequencies `freq` (cycles per voxel), float64.

    ``B(f) = 4π ∫_0^a b(r) r² sinc(2 f r) dr`` (``sinc(x) = sin(πx)/(πx)``), by Gauss–Legendre
    quadrature (the integrand is smooth on [0, a]). Divide a reconstruction by ``B(|x| / N) / B(0)``
    in real space (``x`` in voxels from the centre of the N³ padded box) to undo the blob's
    interpolation (gridding correction).
    """
    f = np.asarray(freq, dtype=np.float64)
    x, wq = _gauss(int(n_quad))
    r = 0.5 * blob.radius * (x + 1.0)
    b = blob.value(r) * r * r * (0.5 * blob.radius * wq)
    uniq, inv = np.unique(f.ravel(), return_inverse=True)
    out = np.empty(uniq.shape)
    for s in range(0, len(uniq), 4096):
        out[s:s + 4096] = 4.0 * np.pi * (np.sinc(2.0 * uniq[s:s + 4096, None] * r[None, :]) @ b)
    return out[inv].reshape(f.shape)


@functools.lru_cache(maxsize=4)
def _gauss(n):
    return np.polynomial.legendre.leggauss(n)


@dataclasses.dataclass(frozen=True)
class LaunchParams:
    """Launch parameters of the GPU insertion kernels (host backends ignore them).

    Attributes
    ----------
    block : tuple of 3 ints
        Thread block of the gather, x·y·z threads: the voxel brick (x, y, z) a block owns in the
        ``brick`` layout; in the ``slab`` layout an x by y·z tile of voxel columns.
    layout : {"slab", "brick"}
        Thread layout of the GPU gather (both deterministic, no atomics). ``slab`` (default, the
        layout of Xmipp's GPU reconstruct_fourier): per dominant axis of the projection normals,
        a thread owns a column of voxels along it and visits only the few voxels of its column
        within the blob radius of each projection's plane. ``brick``: a thread owns one voxel of
        its block's brick and tests every projection against the brick.
    batch : int
        Projections whose rotations a block stages in shared memory at a time.
    table_in_shared : bool
        Copy the blob table into shared memory (else read it through the cache).
    images_per_launch : int
        Images per kernel launch (bounds device memory; the volume stays resident).
    max_device_bytes : int, optional
        Device memory the gather may use for host accumulators; a larger half volume is filled
        one z-slab at a time (default: 80% of the free device memory).
    """

    block: tuple = (8, 8, 4)
    batch: int = 64
    table_in_shared: bool = True
    images_per_launch: int = 4096
    max_device_bytes: int | None = None
    layout: str = "slab"

    def as_dict(self) -> dict:
        """Plain dict form handed to the backends."""
        return {"block": tuple(int(b) for b in self.block), "batch": int(self.batch),
                "table_in_shared": bool(self.table_in_shared), "layout": str(self.layout),
                "max_device_bytes": None if self.max_device_bytes is None else int(self.max_device_bytes)}


def _check_rotations(rotations, n, real):
    on_device = is_device_array(rotations)
    rot = ensure_array("rotations", rotations, dtypes=(np.float32, np.float64), ndim=3)
    if tuple(rot.shape[1:]) != (3, 3):
        raise ValueError(f"`rotations` must have shape (n, 3, 3), got {tuple(rot.shape)}")
    if n is not None and rot.shape[0] != n:
        raise ValueError(f"`rotations` must hold one matrix per image ({n}), got {rot.shape[0]}")
    ensure_finite("rotations", rot)
    if real is not None:
        rot = _as_real("rotations", rot, real)
    return rot


def _as_real(name, a, real):
    """`a` in the real type `real`: a converted copy on the host or through CuPy's ``astype``."""
    if not is_device_array(a):
        return np.ascontiguousarray(a, dtype=real)
    if np.dtype(a.dtype) == np.dtype(real):
        return a
    if not hasattr(a, "astype"):
        raise TypeError(f"`{name}` on the device must be {np.dtype(real).name} to match the images, "
                        f"got {np.dtype(a.dtype).name}")
    return a.astype(real)


def _check_images(images):
    img = ensure_array("images", images, dtypes=(np.complex64, np.complex128), ndim=3)
    ensure_nonempty("images", img)
    n, a, b = (int(s) for s in img.shape)
    if a != b:
        raise ValueError(f"`images` must be square, got {a} x {b} pixels")
    if a % 2 or a < 4:
        raise ValueError(f"`images` must have an even side >= 4 (the padded grid), got {a}")
    ensure_finite("images", img)
    return img


def _check_ctf(ctf, shape, real):
    if ctf is None:
        return None
    c = ensure_array("ctf", ctf, dtypes=(np.float32, np.float64), ndim=3)
    if tuple(c.shape) != tuple(shape):
        raise ValueError(f"`ctf` must have the images' shape {tuple(shape)}, got {tuple(c.shape)}")
    ensure_finite("ctf", c)
    return _as_real("ctf", c, real)


def _max_freq2(max_freq, N):
    if max_freq is None:
        return float((N // 2) ** 2)
    f = ensure_real("max_freq", max_freq, low=0.0, low_open=True)
    return f * f


def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def _params(params):
    if params is None:
        return LaunchParams()
    if not isinstance(params, LaunchParams):
        raise TypeError(f"`params` must be a LaunchParams, got {type(params).__name__}")
    bx, by, bz = (ensure_int("params.block", b, low=1, high=1024) for b in params.block)
    if bx * by * bz > 1024 or (bx * by * bz) % 32:
        raise ValueError(f"`params.block` must hold a multiple of 32 and at most 1024 threads, got {params.block}")
    ensure_int("params.batch", params.batch, low=1, high=512)
    ensure_int("params.images_per_launch", params.images_per_launch, low=1)
    if params.layout not in ("slab", "brick"):
        raise ValueError(f"`params.layout` must be 'slab' or 'brick', got {params.layout!r}")
    return params


def insert(images, rotations, *, ctf=None, volume=None, weights=None, max_freq=None, blob: Blob = Blob(),
           method: str = "gather", params: LaunchParams | None = None, backend: str = "auto"):
    """Insert centred 2-D image spectra into a half Fourier volume and its weights.

    Parameters
    ----------
    images : array (n, N, N), complex64 or complex128
        Centred spectra of padded images (``fftshift(fft2(ifftshift(padded)))``), N even.
    rotations : array (n, 3, 3), float
        Pixel (u, v) of image j lies at frequency ``R_jᵀ (u, v, 0)``.
    ctf : array (n, N, N), float, optional
        Per-pixel CTF: the volume gets ``w·c·X`` and the weights ``w·c²`` (Wiener numerator
        and denominator). None: ``w·X`` and ``w``.
    volume, weights : arrays (N, N, N//2 + 1), optional
        Accumulators to add into (complex, real of the images' precision); new zeros if None.
    max_freq : float, optional
        Radius (voxels of the N grid) of the sphere of voxels filled; default ``N // 2``.
    blob : Blob
        The interpolation window (radius 1.9, α 15, order 0, 10 000-entry table by default).
    method : {"gather", "scatter"}
        Voxel-driven, deterministic gather, or the pixel-driven (atomic) scatter baseline.
    params : LaunchParams, optional
        GPU launch parameters (block, projections per batch, table in shared memory).
    backend : str
        ``"auto"``, ``"cuda"``, ``"numba-cuda"``, ``"cpu"``, ``"numba-cpu"`` or ``"numpy"``.

    Returns
    -------
    (volume, weights)
        The accumulators (float64 / complex128 on ``numpy``; the images' precision elsewhere).
        Host in, host out; device in, device out.
    """
    on_device = is_device_array(images)
    img = _check_images(images)
    n, N = int(img.shape[0]), int(img.shape[1])
    cdt = np.dtype(img.dtype)
    real = _shared.real_dtype(cdt)
    c = _check_ctf(ctf, img.shape, real)
    method = _check_method(method)
    explicit = params is not None
    params = _params(params)
    name, impl, rot, mf2, table = _launch_setup(blob, max_freq, N, backend, on_device, rotations, n, real)
    if not explicit:
        params = _tuned_params(name, cdt, N, n, params)
    if method not in impl.METHODS:
        raise ValueError(f"backend {name!r} has no {method!r} insertion; it has {', '.join(impl.METHODS)}")
    xp = impl.array_module if on_device else (lambda: np)
    vshape = (N, N, N // 2 + 1)
    vol_dt = np.complex128 if name == "numpy" else cdt
    w_dt = np.float64 if name == "numpy" else real
    volume = _check_accumulator("volume", volume, vshape, vol_dt, xp)
    weights = _check_accumulator("weights", weights, vshape, w_dt, xp)
    step = n if name == "numpy" else max(1, int(params.images_per_launch))
    if step >= n:  # one launch: no slicing (a bare DeviceArray cannot be sliced)
        return impl.insert(img, c, rot, table, blob.scale, float(blob.radius), mf2, volume, weights, method,
                           params.as_dict())
    for s in range(0, n, step):
        sl = slice(s, min(n, s + step))
        volume, weights = impl.insert(img[sl], None if c is None else c[sl], rot[sl], table, blob.scale,
                                      float(blob.radius), mf2, volume, weights, method, params.as_dict())
    return volume, weights


def _tuned_params(name, cdt, N, n, default):
    """`default` with the fields ``spkernels.tuning`` stored for this backend, precision and size
    (family ``insertion``: any field of :class:`LaunchParams`); `default` when none is stored
    or the stored one is not a valid LaunchParams (logged)."""
    from ..tuning import active, sizes

    cfg = active.current("insertion", name, np.dtype(cdt).name, sizes.insertion(N, n))
    if not cfg:
        return default
    fields = {f.name for f in dataclasses.fields(LaunchParams)}
    try:
        kw = {k: (tuple(v) if k == "block" else v) for k, v in cfg.items() if k in fields}
        return _params(dataclasses.replace(default, **kw))
    except (TypeError, ValueError) as exc:
        active.value({"params": cfg}, "params", None, lambda v: False, f"insertion ({exc})")
        return default


def _launch_setup(blob, max_freq, N, backend, on_device, rotations, n, real):
    """What insert and extract both need for one call, after checking `blob`: ``(backend name, its
    module, the rotations in its precision, max_freq2, the blob table in its precision)``."""
    if not isinstance(blob, Blob):
        raise TypeError(f"`blob` must be a Blob, got {type(blob).__name__}")
    mf2 = _max_freq2(max_freq, N)
    name = _backends.resolve(backend, on_device=on_device, supported=SUPPORTED)
    rot = _check_rotations(rotations, n, np.float64 if name == "numpy" else real)
    return name, _backends.load(name, "insertion"), rot, mf2, _table_for(name, blob, real)


def _table_for(name, blob, real=None):
    """The blob table in the precision `name`'s kernels read (float64 for NumPy and Numba)."""
    t = blob.table()
    if name == "numpy" or name.startswith("numba") or real is None:
        return t
    return np.ascontiguousarray(t, dtype=real)


def _check_accumulator(argname, a, shape, dtype, xp):
    if a is None:
        return xp().zeros(shape, dtype=dtype)
    a = ensure_array(argname, a, dtypes=(np.dtype(dtype),), ndim=3)
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"`{argname}` must have shape {shape}, got {tuple(a.shape)}")
    return a


def extract(volume, rotations, *, ctf=None, max_freq=None, blob: Blob = Blob(),
            params: LaunchParams | None = None, backend: str = "auto"):
    """Slice a half Fourier volume at rotated planes with the blob: the adjoint of :func:`insert`.

    Parameters
    ----------
    volume : array (N, N, N//2 + 1), complex64 or complex128
        Half volume (layout of :func:`insert`).
    rotations : array (n, 3, 3), float
    ctf : array (n, N, N), float, optional
        Multiplied into each extracted image (the adjoint of the CTF-weighted insertion).
    max_freq, blob, params, backend
        As in :func:`insert`.

    Returns
    -------
    array (n, N, N), complex
        ``out[j, pixel] = c · Σ_k w · volume[k]`` over the voxels of the half volume within the
        blob radius of the pixel's 3-D point and inside the sphere.
    """
    on_device = is_device_array(volume)
    vol = ensure_array("volume", volume, dtypes=(np.complex64, np.complex128), ndim=3)
    N = int(vol.shape[0])
    if N % 2 or N < 4 or tuple(vol.shape) != (N, N, N // 2 + 1):
        raise ValueError(f"`volume` must be a half volume (N, N, N//2 + 1) with N even >= 4, got {tuple(vol.shape)}")
    ensure_finite("volume", vol)
    real = _shared.real_dtype(vol.dtype)
    rot = _check_rotations(rotations, None, None)
    ensure_nonempty("rotations", rot)
    n = int(rot.shape[0])
    c = _check_ctf(ctf, (n, N, N), real)
    params = _params(params)
    name, impl, rot, mf2, table = _launch_setup(blob, max_freq, N, backend, on_device, rot, n, real)
    return impl.extract(vol, c, rot, table, blob.scale, float(blob.radius), mf2, params.as_dict())
