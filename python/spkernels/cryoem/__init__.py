"""Cryo-EM single particle analysis over the spkernels kernels.

- :class:`CTF` (RELION conventions), :func:`phase_flip`, :func:`wiener_filter`;
- :class:`ParticleSet`, :func:`read_relion` / :func:`write_relion` (STAR + MRC stack, RELION 3.1+);
- :func:`simulate` (Fourier-slice projections through the NUFFT, CTF, noise at an SNR);
- :func:`reconstruct_fourier` (gather insertion, weights, gridding correction),
  :func:`reconstruct_half_maps` (+ FSC at 0.143 under a soft mask), :func:`reconstruct_ls`
  (least squares by CG with the Toeplitz normal operator);
- :func:`particle_mask` and :func:`masked_fsc` (a soft mask fitted to the particle; the masked
  half-map FSC corrected by phase randomisation, as RELION reports it);
- :func:`align` (projection matching with ``distance_argmin``) and :func:`refine`.

Nothing here knows which backend runs: every heavy step is a kernel call with ``backend=``.
"""

from .align import AlignResult, align, orientation_grid, refine, rotation_error
from .ctf import CTF, electron_wavelength, phase_flip, wiener_filter
from .euler import euler_to_matrix, matrix_to_euler
from .ls import LSResult, ls_system, reconstruct_ls
from .masking import MaskedFSC, masked_fsc, particle_mask
from .particles import ParticleSet, read_relion, write_relion
from .reconstruct import (HalfMaps, Reconstruction, memory_estimate, reconstruct_fourier, reconstruct_half_maps,
                          soft_sphere)
from .simulate import project, simulate
from .star import read_star, write_star

__all__ = [
    "AlignResult", "CTF", "LSResult", "ls_system", "reconstruct_ls", "HalfMaps", "align", "orientation_grid", "refine", "rotation_error", "ParticleSet", "Reconstruction", "electron_wavelength", "euler_to_matrix",
    "matrix_to_euler", "memory_estimate", "phase_flip", "project", "read_relion", "read_star",
    "reconstruct_fourier", "reconstruct_half_maps", "simulate", "soft_sphere", "wiener_filter", "write_relion",
    "write_star", "MaskedFSC", "masked_fsc", "particle_mask",
]
