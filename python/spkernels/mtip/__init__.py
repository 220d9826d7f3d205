"""MTIP for X-ray single-particle imaging: simulation (and, later, reconstruction).

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
