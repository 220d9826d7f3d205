"""Where the read-only test inputs live: ``shared/data`` beside the repository (CI has it there
too), or the folder named by ``SPK_SHARED_DATA``. The repository never copies them."""

import os
from pathlib import Path


def shared_data() -> Path:
    env = os.environ.get("SPK_SHARED_DATA")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return Path("shared/data")


DATA = shared_data()
