"""Benchmark: validation top-1 against the peak learning rate, from scratch, without augmentation.

The data behind edgefit's fallback peak rate (train/lr_range.py FALLBACK) for runs where the range test is
inconclusive: both generated sets of bench/train_defaults.py, `edgefit train --variant mobilenet_v2_0.35_96
--weights none --epochs 15 --flip off --jitter 0 --lr LR` (SGD with Nesterov momentum, cosine schedule).

    .venv/bin/python bench/lr_sweep.py [--lrs 0.01,0.025,0.05,0.1]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import save  # noqa: E402
from train_defaults import EDGEFIT, SETS  # noqa: E402

BASE = ["--variant", "mobilenet_v2_0.35_96", "--weights", "none", "--epochs", "15", "--seed", "0",
        "--flip", "off", "--jitter", "0"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lrs", default="0.01,0.025,0.05,0.1")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, gen in SETS.items():
            data = Path(tmp) / name
            subprocess.run([EDGEFIT, "demo-data", str(data), *gen], check=True, capture_output=True)
            for lr in args.lrs.split(","):
                r = subprocess.run([EDGEFIT, "train", "--data", str(data), "--out", str(Path(tmp) / f"{name}-{lr}"),
                                    "--json", "--lr", lr, *BASE], capture_output=True, text=True, check=True)
                s = json.loads(r.stdout)
                rows.append({"set": name, "lr": float(lr), "val_top1": s["val_top1"],
                             "diagnostics": [d["code"] for d in s.get("diagnostics", [])]})
                print(rows[-1], flush=True)
    save("lr_sweep", {"benchmark": __doc__.split("\n\n")[0], "command": " ".join(BASE), "rows": rows})


if __name__ == "__main__":
    main()
