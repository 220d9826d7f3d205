"""Fourier shell correlation (FSC) between two 3-D volumes.

``FSC(s) = Re Σ F1·F2* / sqrt(Σ|F1|² · Σ|F2|²)`` over the voxels of each spherical shell of
the Fourier transform. The compiled backends transform both volumes with a real-to-complex FFT
(scipy.fft on the CPU, cupy.fft on the GPU) and then accumulate the three per-shell sums and
the voxel count in one pass over the two half spectra; each half-spectrum column stands for
itself and its Hermitian twin, so the sums equal those over the full spectrum. The ``numpy``
backend is the float64 reference: full complex FFT, vectorised shell indices, ``bincount``.
Every backend's ``spkernels.backends.<pkg>.fsc`` module has the same two functions,
``spectra`` and ``accumulate`` (the family's contract); this module validates, picks the
backend with ``backends.resolve`` and calls ``backends.load(name, "fsc")``.

Shell ``i`` holds the voxels whose spatial frequency ``|s|`` (Å⁻¹) satisfies
``(i - 1/2)·w <= |s| < (i + 1/2)·w`` for shell width ``w``; shells run from 0 (the DC term) to
the last one whose centre is at or below Nyquist, ``1 / (2·voxel_size)``. Corner voxels beyond
that are ignored.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from .. import backends as _backends
from .._arrays import (array_module, ensure_array, ensure_finite, ensure_nonempty, ensure_real, is_device_array,
                       to_host)
from .._errors import BackendUnavailableError

__all__ = ["fsc", "FSCResult", "Resolution"]

log = logging.getLogger("spkernels.kernels.fsc")

_REAL = (np.float32, np.float64)


@dataclasses.dataclass(frozen=True)
class Resolution:
    """Where an FSC curve first drops below a threshold.

    Attributes
    ----------
    threshold : float
        The FSC threshold (0.143 for half maps, 0.5 against a reference).
    reached : bool
        False when the curve never drops below `threshold` up to the last shell: the
        resolution is then better than `angstrom`, which is only the last shell's.
    frequency : float
        Spatial frequency (Å⁻¹) of the linearly interpolated crossing, or of the last shell.
    angstrom : float
        ``1 / frequency``.
    """

    threshold: float
    reached: bool
    frequency: float
    angstrom: float

    def __float__(self) -> float:
        return float(self.angstrom)

    def __str__(self) -> str:
        if self.reached:
            return f"{self.angstrom:.3f} Å (FSC = {self.threshold:g})"
        return (f"not reached: FSC stays at or above {self.threshold:g} up to the last shell "
                f"({self.angstrom:.3f} Å); the resolution is better than that")


@dataclasses.dataclass(frozen=True)
class FSCResult:
    """An FSC curve.

    Attributes
    ----------
    frequency : ndarray, float64 (n_shells,)
        Shell centres in Å⁻¹ (``i * shell_width``).
    fsc : ndarray, float64 (n_shells,)
        FSC per shell; NaN where a shell has no voxels or no power in one volume.
    n_voxels : ndarray, int64 (n_shells,)
        Fourier voxels (of the full spectrum) in each shell.
    voxel_size, shell_width : float
        Å per voxel and the shell width in Å⁻¹.
    sums : ndarray, float64 (n_shells, 3)
        ``Re Σ F1 F2*``, ``Σ|F1|²``, ``Σ|F2|²`` per shell (unnormalised FFT).
    backend : str
        Backend that computed the sums.
    """

    frequency: np.ndarray
    fsc: np.ndarray
    n_voxels: np.ndarray
    voxel_size: float
    shell_width: float
    sums: np.ndarray
    backend: str

    def resolution(self, threshold: float = 0.143) -> Resolution:
        """Resolution where the FSC first drops below `threshold`, linearly interpolated.

        The DC shell is skipped; shells without a defined FSC (NaN) are skipped too. When the
        curve never drops below `threshold`, the result has ``reached=False`` and reports the
        last shell (the true resolution is then better than that).
        """
        threshold = ensure_real("threshold", threshold)
        f, c = self.frequency, self.fsc
        valid = [i for i in range(1, len(c)) if np.isfinite(c[i])]
        prev = None
        for i in valid:
            if c[i] < threshold:
                if prev is None:  # already below at the first shell past DC
                    freq = f[i]
                else:
                    j = prev
                    freq = f[j] + (c[j] - threshold) * (f[i] - f[j]) / (c[j] - c[i])
                return Resolution(threshold, True, float(freq), float(1.0 / freq))
            prev = i
        last = valid[-1] if valid else len(f) - 1
        freq = float(f[last]) if f[last] > 0 else float("nan")
        return Resolution(threshold, False, freq, float(1.0 / freq) if freq > 0 else float("inf"))

    def plot(self, path, *, thresholds=(0.143, 0.5), title: str | None = None) -> None:
        """Write the FSC curve to an image file (PNG unless `path` names another format) with Agg."""
        # A bare Figure renders with Agg and never touches pyplot's global backend or state.
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 4), dpi=120)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(self.frequency, self.fsc, "-o", ms=2.5, lw=1.2, label="FSC")
        for t in thresholds:
            res = self.resolution(t)
            label = f"{t:g}: {res.angstrom:.2f} Å" if res.reached else f"{t:g}: not reached"
            ax.axhline(t, ls="--", lw=0.8, color="gray")
            if res.reached:
                ax.axvline(res.frequency, ls=":", lw=0.8, color="gray")
            ax.plot([], [], " ", label=label)
        ax.set_xlabel("spatial frequency (1/Å)")
        ax.set_ylabel("FSC")
        ax.set_ylim(min(-0.1, float(np.nanmin(self.fsc)) - 0.05) if np.isfinite(self.fsc).any() else -0.1, 1.05)
        ax.set_xlim(0, float(self.frequency[-1]))
        if title:
            ax.set_title(title)
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)


def _shells(shape, voxel_size, shell_width):
    nz, ny, nx = shape
    w = 1.0 / (min(shape) * voxel_size) if shell_width is None else shell_width
    nyquist = 0.5 / voxel_size
    n_shells = int(math.floor(nyquist / w * (1.0 + 1e-12))) + 1
    scale = tuple(1.0 / (n * voxel_size * w) for n in (nz, ny, nx))
    return w, n_shells, scale


def fsc(vol1, vol2, *, voxel_size: float = 1.0, shell_width: float | None = None, mask=None,
        backend: str = "auto") -> FSCResult:
    """Fourier shell correlation of two volumes.

    Parameters
    ----------
    vol1, vol2 : array (nz, ny, nx), float32 or float64, same shape and dtype
        Real volumes, NumPy or GPU (``__cuda_array_interface__``; the FFT then needs CuPy).
    voxel_size : float
        Å per voxel (frequencies are reported in Å⁻¹).
    shell_width : float, optional
        Shell width in Å⁻¹; default one Fourier voxel, ``1 / (min(shape) · voxel_size)``.
    mask : array (nz, ny, nx), optional
        Real mask (binary or soft) multiplied into both volumes before the transform.
    backend : str
        ``"auto"``, ``"cuda"``, ``"numba-cuda"``, ``"cpu"``, ``"numba-cpu"`` or ``"numpy"``.

    Returns
    -------
    FSCResult
        Host (NumPy) arrays whatever the input device; ``.resolution(0.143)``, ``.plot(path)``.

    Notes
    -----
    Compiled backends compute the FFT in the volumes' precision and accumulate in float64; the
    sums are bitwise reproducible on a given backend. GPU backends given NumPy volumes without
    CuPy installed transform on the host and copy the half spectra to the device.
    """
    on_device = is_device_array(vol1)
    if is_device_array(vol2) != on_device:
        raise ValueError("`vol1` and `vol2` must both be host arrays or both be GPU arrays")
    vol1 = ensure_array("vol1", vol1, dtypes=_REAL, ndim=3)
    vol2 = ensure_array("vol2", vol2, dtypes=_REAL, ndim=3)
    if tuple(vol1.shape) != tuple(vol2.shape):
        raise ValueError(f"`vol1` and `vol2` must have the same shape, got {tuple(vol1.shape)} and {tuple(vol2.shape)}")
    if np.dtype(vol1.dtype) != np.dtype(vol2.dtype):
        raise TypeError(f"`vol1` and `vol2` must have the same dtype, got {np.dtype(vol1.dtype).name} "
                        f"and {np.dtype(vol2.dtype).name}")
    ensure_nonempty("vol1", vol1)
    if min(vol1.shape) < 2:
        raise ValueError(f"`vol1` needs at least 2 voxels along every axis, got shape {tuple(vol1.shape)}")
    voxel_size = ensure_real("voxel_size", voxel_size, low=0.0, low_open=True)
    if not math.isfinite(0.5 / voxel_size / min(vol1.shape)):
        raise ValueError(f"`voxel_size`={voxel_size:g} is too small: its frequencies overflow float64")
    if shell_width is not None:
        shell_width = ensure_real("shell_width", shell_width, low=0.0, low_open=True)
        if not math.isfinite(0.5 / voxel_size / shell_width) or 0.5 / voxel_size / shell_width > 100_000:
            raise ValueError(f"`shell_width`={shell_width:g} gives more than 100000 shells up to Nyquist "
                             f"(voxel_size={voxel_size:g}); use a wider shell")
    ensure_finite("vol1", vol1)
    ensure_finite("vol2", vol2)
    if mask is not None:
        if is_device_array(mask) != on_device:
            raise ValueError("`mask` must live on the same device as the volumes")
        mask = ensure_array("mask", mask, dtypes=(np.float32, np.float64, np.bool_), ndim=3)
        if tuple(mask.shape) != tuple(vol1.shape):
            raise ValueError(f"`mask` must have the volumes' shape {tuple(vol1.shape)}, got {tuple(mask.shape)}")
        if mask.dtype != np.bool_:
            ensure_finite("mask", mask)
        xp = array_module(vol1)
        if xp is None:
            raise BackendUnavailableError("a `mask` on GPU arrays needs CuPy; install spkernels[cuda12|cuda13]")
        vol1 = vol1 * mask.astype(vol1.dtype)
        vol2 = vol2 * mask.astype(vol2.dtype)

    if not isinstance(backend, str):
        raise TypeError(f"`backend` must be a string, got {type(backend).__name__}")
    name = _backends.resolve(backend, on_device=on_device)
    shape = tuple(int(s) for s in vol1.shape)
    w, n_shells, scale = _shells(shape, voxel_size, shell_width)
    nx = shape[2]
    if shell_width is not None and n_shells > 100_000:
        raise ValueError(f"`shell_width`={shell_width} gives {n_shells} shells; use a wider shell")

    impl = _backends.load(name, "fsc")
    f1, f2 = impl.spectra(vol1, vol2, on_device)
    sums = to_host(impl.accumulate(f1, f2, nx, *scale, n_shells))
    sums = np.asarray(sums, dtype=np.float64).reshape(n_shells, 4)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = sums[:, 0] / np.sqrt(sums[:, 1] * sums[:, 2])
    counts = np.rint(sums[:, 3]).astype(np.int64)
    curve[counts == 0] = np.nan
    freq = np.arange(n_shells) * w
    log.debug("fsc: %s, shape %s, %d shells of width %.4g 1/Å on %s", np.dtype(vol1.dtype).name, shape, n_shells,
              w, name)
    return FSCResult(freq, curve, counts, voxel_size, w, sums[:, :3].copy(), name)

