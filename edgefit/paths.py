"""Where edgefit keeps what it computes once (cost statistics, kernel lists, zoo graphs, doctor records):
$EDGEFIT_CACHE_DIR, else $XDG_CACHE_HOME/edgefit, else ~/.cache/edgefit; and the library versions that key it."""
from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path


def cache_dir() -> Path:
    if os.environ.get("EDGEFIT_CACHE_DIR"):
        return Path(os.environ["EDGEFIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgefit"


def lib_version(name: str) -> str:
    """The installed version of library `name` (part of a cache key), "absent" where it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"
