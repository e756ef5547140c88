"""Benchmark: `edgefit doctor` throughput on 20,000 generated demo images (96 px, 10 classes), cold (every
file decoded, hashed and thumbnailed) and warm (the per-file cache in EDGEFIT_CACHE_DIR answers), with
planted duplicates so the near-duplicate search has work to do.

    .venv/bin/python bench/doctor_speed.py [--per-class 2000] [--name doctor_speed]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doctor_near_dups import cpu_name  # noqa: E402
from record import save  # noqa: E402
from train_defaults import EDGEFIT  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=2000)
    ap.add_argument("--name", default="doctor_speed", help="results file name under bench/results/")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "demo"
        subprocess.run([EDGEFIT, "demo-data", str(data), "--classes", "10", "--per-class", str(args.per_class),
                        "--size", "96"], check=True, capture_output=True)
        from PIL import Image

        planted = 0
        for i, cls in enumerate(sorted(p.name for p in data.iterdir())[:5]):  # 5 exact + 5 resized copies
            src = sorted((data / cls).iterdir())[i]
            shutil.copy(src, data / cls / f"copy_{src.name}")
            with Image.open(src) as im:
                im.resize((64, 64)).save(data / cls / f"small_{src.stem}.png")
            planted += 2
        n = sum(1 for _ in data.rglob("*.*"))
        env = {**os.environ, "EDGEFIT_CACHE_DIR": str(Path(tmp) / "cache")}
        rows = {}
        for run in ("cold", "warm"):
            t = time.perf_counter()
            r = subprocess.run([EDGEFIT, "doctor", str(data), "--json"], capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t
            if r.returncode not in (0, 1):
                raise SystemExit(r.stderr[-2000:])
            d = json.loads(r.stdout)
            dup = [f for f in d["findings"] if f["code"] in ("duplicate", "near_duplicate", "leak")]
            rows[run] = {"seconds": round(wall, 1), "images_per_sec": round(n / wall, 1),
                         "duplicate_findings": {f["code"]: f["count"] for f in dup}}
            print(run, rows[run], flush=True)
    save(args.name, {"benchmark": __doc__.split("\n\n")[0], "cpu": cpu_name(), "images": n,
                     "planted_duplicates": planted, "cpu_count": os.cpu_count(), "runs": rows})


if __name__ == "__main__":
    main()
