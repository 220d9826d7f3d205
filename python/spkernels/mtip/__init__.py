"""MTIP for X-ray single-particle imaging: simulation, reconstruction and its assessment.

Simulation: :mod:`.simulate` (images of a Gaussian-density particle, :mod:`.density`,
:mod:`.formfactors`; :mod:`.particle` builds the built-in one). Reconstruction by MTIP:
:func:`spkernels.mtip.reconstruct.reconstruct` runs the loop of :mod:`.slicing`,
:mod:`.matching`, :mod:`.merging` and :mod:`.phasing` over the stages of :mod:`.schedule`, with
settings from :mod:`.config`, data in :mod:`.data` and checkpoints by :mod:`.checkpoint`.
Assessment: :mod:`.metrics` (orientation errors), :mod:`.resolution` (alignment and FSC) and
:mod:`.report`; :mod:`.cli` holds the ``spkernels mtip`` commands.

>>> from spkernels.mtip import simulate            # doctest: +SKIP
>>> data = simulate(100, seed=1)                   # built-in particle, standard geometry
"""

from .density import GaussianDensity, StructureFactorGrid, band_limited_density
from .formfactors import form_factor, gaussian_terms, supported_elements
from .particle import demo_particle
from .simulate import expected_photons, particle_density, simulate, slice_structure_factors

__all__ = [
    "GaussianDensity",
    "StructureFactorGrid",
    "band_limited_density",
    "demo_particle",
    "expected_photons",
    "form_factor",
    "gaussian_terms",
    "particle_density",
    "simulate",
    "slice_structure_factors",
    "supported_elements",
]
