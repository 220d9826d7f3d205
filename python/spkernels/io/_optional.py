"""Import of the format libraries the readers and writers need, done when a file is first touched."""

from __future__ import annotations

import importlib

from .._errors import MissingDependencyError


def require(module: str, purpose: str):
    """Import and return `module`, or raise MissingDependencyError (an ImportError) saying which
    `purpose` needs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{purpose} needs {module} (pip install {module})") from exc
