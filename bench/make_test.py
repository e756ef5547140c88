"""Benchmark: `make test` from a fresh clone, install included (pip's cache warm), as a newcomer runs it.

Clones this checkout's HEAD into a temporary folder, runs `make test` there with pytest's --durations, and records
the wall time of the whole command, pytest's own time, the test counts and the slowest tests. Writes
bench/results/make_test.json (the README quotes its minutes).

    .venv/bin/python bench/make_test.py [--keep DIR]
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from record import save  # noqa: E402

DURATIONS = 40


def main() -> None:
    from edgefit.benchmark.machine import cpu_model

    keep = Path(sys.argv[sys.argv.index("--keep") + 1]) if "--keep" in sys.argv else None
    with tempfile.TemporaryDirectory() as tmp:
        clone = keep or Path(tmp) / "edgefit"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True,
                              text=True).stdout.strip()
        t = time.perf_counter()
        r = subprocess.run(["make", "test"], cwd=clone, capture_output=True, text=True,
                           env={**os.environ, "PYTEST_ADDOPTS": f"--durations={DURATIONS}"})
        wall = time.perf_counter() - t
    out = r.stdout + r.stderr
    summary = re.findall(r"^=*\s*(\d+ (?:passed|failed).*?) in ([\d.]+)s", out, flags=re.M)  # -q: no ===
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", summary[-1][0])} \
        if summary else {}
    slowest = [{"seconds": float(s), "what": w.strip()} for s, w in
               re.findall(r"^([\d.]+)s (?:call|setup|teardown)\s+(.+)$", out, flags=re.M)][:DURATIONS]
    save("make_test", {"benchmark": "make test from a fresh clone, install included (pip cache warm)",
                       "commit": head, "cpu": cpu_model(), "exit_code": r.returncode,
                       "wall_seconds": round(wall, 1), "wall_minutes": round(wall / 60, 1),
                       "pytest_seconds": float(summary[-1][1]) if summary else None, "counts": counts,
                       "slowest": slowest, "tail": out[-3000:] if r.returncode else ""})


if __name__ == "__main__":
    main()
