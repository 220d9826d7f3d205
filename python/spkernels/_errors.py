"""Exception types shared across spkernels."""


class BackendUnavailableError(RuntimeError):
    """A requested backend is not usable here (not compiled, no GPU, or no such name)."""
