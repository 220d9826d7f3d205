"""Problem-size classes: one function per kernel family, from the call's main sizes to the string
that keys a tuned configuration (each size rounded up to a power of two, so nearby problems
share a result and the cache stays small).
"""

from __future__ import annotations

from .active import size_tag

__all__ = ["distance", "nufft", "insertion", "cg", "fsc"]


def distance(R: int, N: int, P: int) -> str:
    """Models R, data rows N, pixels P: ``"r4096-n1024-p1024"``."""
    return size_tag(r=R, n=N, p=P)


def nufft(nufft_type: int, w: int, n_fine, M: int) -> str:
    """Type, kernel width, largest fine-grid side and point count: ``"t1-w7-n64-m262144"``."""
    return f"t{int(nufft_type)}-w{int(w)}-" + size_tag(n=max(int(s) for s in n_fine), m=M)


def insertion(N: int, n: int) -> str:
    """Padded image side N and images per call n: ``"N64-n256"``."""
    return size_tag(N=N, n=n)


def cg(size: int) -> str:
    """Elements of the right-hand side: ``"n262144"``."""
    return size_tag(n=size)


def fsc(shape) -> str:
    """Largest side of the volumes: ``"n128"``."""
    return size_tag(n=max(int(s) for s in shape))
