"""The one import of PyTorch in :mod:`spkernels.hits`, with the error that names the extra."""

from __future__ import annotations

import importlib

from .._errors import MissingDependencyError

INSTALL_HINT = 'pip install "spkernels[ml]"'


def require_torch():
    """Import and return ``torch``, or raise MissingDependencyError (an ImportError) saying which
    extra installs it.

    Everything in :mod:`spkernels.hits` that trains or runs a network calls this first; the data
    simulation, the exemplar classifier and the HDF5 helpers do not need PyTorch.
    """
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise MissingDependencyError(f"spkernels.hits needs PyTorch for its networks: {INSTALL_HINT} "
                          f"(CPU build: pip install torch==2.13.0)") from exc
