"""Where edgefit keeps what it computes once (cost statistics, kernel lists, doctor records):
$EDGEFIT_CACHE_DIR, else $XDG_CACHE_HOME/edgefit, else ~/.cache/edgefit."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    if os.environ.get("EDGEFIT_CACHE_DIR"):
        return Path(os.environ["EDGEFIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgefit"
