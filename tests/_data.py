"""Where the read-only test inputs live: ``tests/data`` in the repository (copies of the public
inputs: PDB entry 2cex, the LCLS beam file amo86615.beam and a 65³ ribosome map), so a fresh
clone runs every test; ``SPK_SHARED_DATA`` names another folder."""

import os
from pathlib import Path


def shared_data() -> Path:
    env = os.environ.get("SPK_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parent / "data"


DATA = shared_data()
