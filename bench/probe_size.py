"""Benchmark: the size of the probe folder for a build's artifacts with the small calibration set (issue 27: the
demo build's folder <= 50 MB, to copy onto a board's SD card or over a slow link).

    .venv/bin/python bench/probe_size.py [ART_DIR]     # default runs/demo-build/artifacts-qat, else artifacts

Writes bench/results/probe_size.json.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from record import save  # noqa: E402

LIMIT_MB = 50.0


def main() -> None:
    from edgefit.benchmark.probe_pack import pack

    build = ROOT / "runs" / "demo-build"
    art = Path(sys.argv[1]) if len(sys.argv) > 1 else next(
        (p for p in (build / "artifacts-qat", build / "artifacts") if p.is_dir()), build / "artifacts")
    if not art.is_dir():
        raise SystemExit(f"{art} is not an export folder: run `make demo` first, or give one")
    with tempfile.TemporaryDirectory() as tmp:
        folder = pack([str(art)], Path(tmp) / "probe", runtime="litert", calibration="small")
        files = [f for f in (Path(tmp) / "probe").rglob("*") if f.is_file()]
        cal = sum(f.stat().st_size for f in files if "calibration" in f.parts)
        size = sum(f.stat().st_size for f in files)
    save("probe_size", {"benchmark": "edgefit probe ART --calibration-set small (litert, int8 networks)",
                        "artifacts": str(art.relative_to(ROOT) if art.is_relative_to(ROOT) else art),
                        "size_mb": round(size / 2**20, 1), "calibration_mb": round(cal / 2**20, 1),
                        "networks": len(folder.networks), "limit_mb": LIMIT_MB, "within": size / 2**20 <= LIMIT_MB})


if __name__ == "__main__":
    main()
