"""Benchmark: what `edgefit train` gives a user who passes no tuning flag, on data it was not tuned for.

Two generated sets: the demo shapes (10 classes x 200 images, 96 px, colour) and the orientation hard
case (10 classes x 140 images, 32 px grayscale clock hands: every horizontal flip turns a class into
another). Each is trained from scratch with `edgefit train --variant mobilenet_v2_0.35_96 --weights none
--epochs 15` and no other flag ("defaults"), and with hand-tuned flags ("tuned": batch 32, SGD lr 0.05,
no flip, no colour jitter). Records validation top-1, the curves, the diagnostics and the decisions the
defaults took. `--label` names the code state (e.g. before / after); results for other labels in
bench/results/train_defaults.json are kept, so before and after sit side by side.

    .venv/bin/python bench/train_defaults.py --label after [--seed 1]   # training seed 0 unless given
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EDGEFIT = str(Path(sys.executable).with_name("edgefit"))
OUT = ROOT / "bench" / "results" / "train_defaults.json"
SETS = {
    "demo_shapes": ["--classes", "10", "--per-class", "200", "--size", "96"],
    "orientation": ["--kind", "orientation", "--classes", "10", "--per-class", "140", "--size", "32"],
}
BASE = ["--variant", "mobilenet_v2_0.35_96", "--weights", "none", "--epochs", "15"]
RUNS = {"defaults": [], "tuned": ["--batch-size", "32", "--lr", "0.05", "--no-flip", "--jitter", "0"]}


def run(data: Path, out: Path, extra: list[str], seed: int = 0) -> dict:
    t = time.perf_counter()
    r = subprocess.run([EDGEFIT, "train", "--data", str(data), "--out", str(out), "--json", *BASE, "--seed", str(seed),
                        *extra],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode:
        raise SystemExit(r.stderr[-3000:])
    s = json.loads(r.stdout)
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"val_top1": s["val_top1"], "wall_seconds": round(wall, 1), "epochs_run": s["epochs_run"],
            "lr": s.get("lr"), "batch_size": s.get("batch_size"), "augment": s.get("augment"),
            "decisions": s.get("decisions"),
            "diagnostics": [{k: d[k] for k in ("code", "severity", "epoch")} for d in s.get("diagnostics", [])],
            "curve_val_top1": [round(m["val_top1"], 4) for m in history],
            "curve_train_loss": [round(m["train_loss"], 3) for m in history]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True, help="name of the code state measured, e.g. before or after")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--seed", type=int, default=0, help="training seed (the data sets stay the same)")
    args = ap.parse_args()
    from edgefit.benchmark.machine import cpu_model

    result = json.loads(OUT.read_text()) if OUT.is_file() else {"benchmark": __doc__.split("\n\n")[0], "labels": {}}
    entry = {"commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                      cwd=ROOT).stdout.strip(), "date": time.strftime("%Y-%m-%d"), "seed": args.seed,
             "cpu": cpu_model(), "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            data = Path(tmp) / name
            subprocess.run([EDGEFIT, "demo-data", str(data), *SETS[name]], check=True, capture_output=True)
            entry["sets"][name] = {}
            for kind in args.runs.split(","):
                r = run(data, Path(tmp) / f"{name}-{kind}", RUNS[kind], args.seed)
                entry["sets"][name][kind] = r
                print(json.dumps({"label": args.label, "set": name, "run": kind, "val_top1": r["val_top1"],
                                  "wall_seconds": r["wall_seconds"]}), flush=True)
    result["labels"][args.label] = entry
    OUT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
