"""Multi-hit rejection for X-ray SPI: tell single-particle diffraction images from multi-hits.

- :mod:`.data` (NumPy only): labelled single/double/triple/quadruple hits simulated by
  :func:`spkernels.mtip.simulate.simulate` from built-in or PDB/mmCIF particles
  (:func:`simulate_hits`), noise drawn late (:func:`realise`: fluence jitter, Poisson), HDF5
  files (:func:`read_hitset`, :func:`write_hitset`).
- :mod:`.networks`, :mod:`.training` (PyTorch, the ``ml`` extra): :class:`TwinNetwork` (a
  32-dimensional embedding trained with the semi-hard triplet loss) and the multi-output CNN
  baseline :class:`HitCNN`, trained by :func:`train_network` with detector augmentations.
- :mod:`.classify`: :class:`ExemplarClassifier` (NumPy only: distance to labelled exemplars,
  calibrated threshold and confidence), :class:`HitClassifier` (a network with its exemplars,
  model files) and :func:`drop_multi_hits` for MTIP's data.
- :mod:`.cli`: ``spkernels hits simulate|train|evaluate|classify``.

Everything here imports without PyTorch; the names that need it load it on first use and say
``pip install "spkernels[ml]"`` when it is missing.
"""

from __future__ import annotations

from ._torch import INSTALL_HINT, require_torch
from .classify import ExemplarClassifier, HitClassifier, HitPrediction, confusion_matrix, drop_multi_hits
from .data import (HitSet, ParticleSpec, detector_mask, parse_particle, read_hitset, realise, simulate_hits,
                   write_hitset)

_TORCH_NAMES = {
    "TwinNetwork": "networks", "HitCNN": "networks", "preprocess": "networks",
    "semi_hard_triplet_loss": "networks", "build_network": "networks",
    "TrainSettings": "training", "TrainedNetwork": "training", "train_network": "training",
}

__all__ = sorted(["INSTALL_HINT", "require_torch", "ExemplarClassifier", "HitClassifier", "HitPrediction",
                  "confusion_matrix", "drop_multi_hits", "HitSet", "ParticleSpec", "detector_mask",
                  "parse_particle", "read_hitset", "realise", "simulate_hits", "write_hitset", *_TORCH_NAMES])


def __getattr__(name):
    if name in _TORCH_NAMES:
        import importlib

        return getattr(importlib.import_module(f".{_TORCH_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
