"""The diffraction data MTIP reconstructs from: :class:`SPIData` (images, pixel s-vectors, mask)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._arrays import ensure_array, ensure_finite


@dataclass
class SPIData:
    """Diffraction data for MTIP.

    Attributes
    ----------
    intensities : float array (N, P)
        Photon counts per image and pixel (flattened detector).
    s : float array (P, 3)
        Pixel s-vectors in Å⁻¹, laboratory frame, (x, y, z) components.
    mask : float array (P,), optional
        Pixel weights (0 for a beam stop or bad pixel).
    orientations : float array (N, 4), optional
        True orientations [w, x, y, z] when known (simulations): used only for reporting.
    """

    intensities: np.ndarray
    s: np.ndarray
    mask: np.ndarray | None = None
    orientations: np.ndarray | None = None

    def __post_init__(self):
        self.intensities = ensure_array("intensities", self.intensities, dtypes=(np.float32, np.float64), ndim=2,
                                        allow_device=False)
        ensure_finite("intensities", self.intensities)
        if (self.intensities < 0).any():
            raise ValueError("`intensities` must be non-negative photon counts")
        self.s = ensure_array("s", self.s, dtypes=(np.float32, np.float64), ndim=2, allow_device=False)
        if self.s.shape != (self.intensities.shape[1], 3):
            raise ValueError(f"`s` must have shape (P, 3) = ({self.intensities.shape[1]}, 3), got {self.s.shape}")
        ensure_finite("s", self.s)
        if self.mask is not None:
            mask = ensure_array("mask", self.mask, allow_device=False)
            if mask.dtype.kind not in "biuf":
                raise TypeError(f"`mask` must be real pixel weights, got dtype {mask.dtype.name}")
            self.mask = np.asarray(mask, dtype=np.float64).reshape(-1)
            if self.mask.shape != (self.intensities.shape[1],):
                raise ValueError(f"`mask` must have {self.intensities.shape[1]} entries, got {self.mask.size}")
            if (self.mask < 0).any() or not np.isfinite(self.mask).all():
                raise ValueError("`mask` must be finite and non-negative")
        if self.orientations is not None:
            q = ensure_array("orientations", self.orientations, ndim=(1, 2), allow_device=False)
            if q.dtype.kind not in "iuf":
                raise TypeError(f"`orientations` must be real quaternions, got dtype {q.dtype.name}")
            if q.size != 4 * len(self.intensities):
                raise ValueError(f"`orientations` must have one quaternion per image: ({len(self.intensities)}, 4), "
                                 f"got shape {tuple(q.shape)}")
            self.orientations = np.asarray(q, dtype=np.float64).reshape(-1, 4)

    @classmethod
    def from_dataset(cls, ds) -> "SPIData":
        """From an :class:`spkernels.io.SPIDataset` (the skopi/SpiniFEL layout)."""
        n = ds.n_images
        mask = None if ds.mask is None else np.asarray(ds.mask, dtype=np.float64).reshape(-1)
        return cls(intensities=np.asarray(ds.intensities).reshape(n, -1), s=ds.s_vectors.reshape(-1, 3),
                   mask=mask, orientations=ds.quaternions)

    @property
    def n_images(self) -> int:
        return self.intensities.shape[0]

    @property
    def s_max(self) -> float:
        """Largest |s| of any used pixel (the detector-corner resolution is 1/s_max)."""
        r = np.linalg.norm(self.s, axis=1)
        return float(r[self.pixel_weights() > 0].max())

    def pixel_weights(self) -> np.ndarray:
        """Weight of each pixel (P,): the mask, or ones when there is none."""
        return np.ones(self.s.shape[0]) if self.mask is None else self.mask
