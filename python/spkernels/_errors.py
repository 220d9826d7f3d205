"""Exception types shared across spkernels."""


class BackendUnavailableError(RuntimeError):
    """A requested backend is not usable here (not compiled, no GPU, or no such name)."""


class MissingDependencyError(ImportError):
    """An optional package a feature needs is not installed; the message says how to install it.

    An ImportError, so ``except ImportError`` still catches it; the command line reports it as an
    error of the user's environment (exit code 2, one line), not as an internal error.
    """
