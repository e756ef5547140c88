"""Shared by the bench scripts: stamp a result with the machine and date, write it, print it."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def save(name: str, result: dict) -> Path:
    result = {**result, "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                                    "platform": platform.platform()},
              "date": time.strftime("%Y-%m-%d")}
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return out
