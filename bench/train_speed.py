"""Benchmark: training on the demo data from scratch, as a user would run it.

10 classes x 200 images at 96 px (`edgefit demo-data`), `edgefit train --variant mobilenet_v2_0.35_96
--weights none --epochs 40 --batch-size 32 --jitter 0` (the demo images already randomise colour, so
colour jitter only slows learning). Target: >= 90% validation top-1 within 5 minutes on 2 cores.
Writes bench/results/train_speed.json with wall time, images/s, time per epoch, the epoch and time at
which validation top-1 first reached 90%, and the whole curve.

    .venv/bin/python bench/train_speed.py
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EDGEFIT = str(Path(sys.executable).with_name("edgefit"))
ARGS = ["--variant", "mobilenet_v2_0.35_96", "--weights", "none", "--epochs", "40", "--batch-size", "32",
        "--jitter", "0", "--seed", "0"]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data, run = Path(tmp) / "demo", Path(tmp) / "run"
        subprocess.run([EDGEFIT, "demo-data", str(data), "--classes", "10", "--per-class", "200", "--size", "96"],
                       check=True, capture_output=True)
        t = time.perf_counter()
        r = subprocess.run([EDGEFIT, "train", "--data", str(data), "--out", str(run), "--json", *ARGS],
                           capture_output=True, text=True)
        wall = time.perf_counter() - t
        if r.returncode:
            raise SystemExit(r.stderr)
        summary = json.loads(r.stdout)
        history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    elapsed, reached = summary["data_load_s"], None
    for m in history:
        elapsed += m["epoch_seconds"]
        if reached is None and m["val_top1"] >= 0.9:
            reached = {"epoch": m["epoch"], "train_and_eval_seconds": round(elapsed, 1)}
    result = {
        "benchmark": "edgefit train from scratch on demo data (10 classes x 200 images, 96 px)",
        "command": "edgefit train " + " ".join(ARGS),
        "val_top1": summary["val_top1"],
        "target": {"val_top1": 0.9, "wall_seconds": 300},
        "wall_seconds_whole_process": round(wall, 1),
        "train_images_per_sec": summary["train_images_per_sec"],
        "seconds_per_epoch": summary["seconds_per_epoch"],
        "first_reached_0.9": reached,
        "epochs_run": summary["epochs_run"],
        "curve_val_top1": [round(m["val_top1"], 4) for m in history],
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "threads": summary["threads"],
                    "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
    }
    out = ROOT / "bench" / "results" / "train_speed.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
