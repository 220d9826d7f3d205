"""Backend-neutral kernel entry points: validate inputs, pick a backend, batch, dispatch.

Every function takes ``backend="auto"`` (see :mod:`spkernels.backends`). NumPy in gives NumPy
out; GPU arrays (``__cuda_array_interface__``) in give GPU arrays out with no host copy.
"""

# --- nufft (issue 3) ---
from .nufft import Plan, nufft3d1, nufft3d2  # noqa: E402,F401
# --- end nufft ---

# --- solvers and metrics (issue 4): fsc, cg, ToeplitzNormalOperator ---
from .fsc import FSCResult, Resolution, fsc  # noqa: E402,F401
from .cg import CGResult, cg  # noqa: E402,F401
from .toeplitz import ToeplitzNormalOperator  # noqa: E402,F401
# --- end solvers and metrics ---
