"""Import of the format libraries the readers and writers need, done when a file is first touched."""

from __future__ import annotations

import importlib


def require(module: str, purpose: str):
    """Import and return `module`, or raise ImportError saying which `purpose` needs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{purpose} needs {module} (pip install {module})") from exc
