"""Where the read-only test inputs live: ``tests/data`` in the repository (copies of the public
inputs: PDB entry 2cex, the LCLS beam file amo86615.beam and a 65³ ribosome map), so a fresh
clone runs every test and nothing reads outside the checkout."""

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
