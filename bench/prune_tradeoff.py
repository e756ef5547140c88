"""Benchmark: pruning a trained model vs. training the zoo's narrower width at similar MACs; and QAT.

On the demo data (10 classes x 200 images, 96 px), as a user would run it:
  1. `edgefit train --variant mobilenet_v2_1.0_96 --weights none --epochs E` (the source model);
  2. `edgefit compress --prune-ratio 0.4 --steps 3 --finetune-epochs F` (40% of the MACs removed);
  3. the zoo's V2 width at 96 px whose MACs are nearest the pruned model's, trained from scratch for the
     same total number of epochs as the pruned model saw (E + steps-1 + F);
  4. `edgefit compress --qat` of the source model: int8 ONNX top-1 before and after QAT.
Then batch-1 fp32 latency of the three networks on onnxruntime (2 threads), measured in interleaved
rounds after all training has finished. Targets (issue 6): the pruned model loses <= 1 point of
validation top-1 and runs >= 25% faster than the source. Writes bench/results/prune_tradeoff.json.

    .venv/bin/python bench/prune_tradeoff.py [--epochs 30] [--finetune-epochs 10]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from record import save  # noqa: E402

EDGEFIT = str(Path(sys.executable).with_name("edgefit"))
SOURCE = "mobilenet_v2_1.0_96"
STEPS = 3


def cli(*args) -> dict:
    t = time.perf_counter()
    r = subprocess.run([EDGEFIT, *map(str, args), "--json"], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"edgefit {' '.join(map(str, args))} failed:\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout)
    out["_wall_seconds"] = round(time.perf_counter() - t, 1)
    print(f"  {args[0]} done in {out['_wall_seconds']} s", file=sys.stderr, flush=True)
    return out


def nearest_width(macs: float) -> str:
    from edgefit import zoo
    from edgefit.compress import stats_of

    best = None
    for v in zoo.variants():
        if v.family == "mobilenet_v2" and v.resolution == 96 and v.name != SOURCE:
            m = stats_of(zoo.build_model(v, 10), 96)["macs"]
            if best is None or abs(m - macs) < best[1]:
                best = (v.name, abs(m - macs))
    return best[0]


def latencies(run_dirs: dict, rounds: int = 5) -> dict:
    from edgefit import checkpoint
    from edgefit.compress import host_latency_ms

    models = {k: checkpoint.build_model(checkpoint.load(Path(d) / "best.pt")) for k, d in run_dirs.items()}
    times = {k: [] for k in models}
    for _ in range(rounds):
        for k, m in models.items():
            times[k].append(host_latency_ms(m, 96))
    return {k: round(statistics.median(v), 3) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--finetune-epochs", type=int, default=10)
    ap.add_argument("--prune-ratio", type=float, default=0.4)
    args = ap.parse_args()
    t0 = time.perf_counter()
    train_args = ["--weights", "none", "--batch-size", "32", "--jitter", "0", "--seed", "0"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([EDGEFIT, "demo-data", str(tmp / "demo"), "--classes", "10", "--per-class", "200",
                        "--size", "96"], check=True, capture_output=True)
        src = cli("train", "--variant", SOURCE, "--data", tmp / "demo", "--epochs", args.epochs,
                  "--out", tmp / "source", *train_args)
        pruned = cli("compress", tmp / "source", "--prune-ratio", args.prune_ratio, "--steps", STEPS,
                     "--finetune-epochs", args.finetune_epochs, "--batch-size", 32, "--out", tmp / "pruned")
        c = pruned["compress"]
        narrow_name = nearest_width(c["after"]["macs"])
        total_epochs = args.epochs + STEPS - 1 + args.finetune_epochs
        narrow = cli("train", "--variant", narrow_name, "--data", tmp / "demo", "--epochs", total_epochs,
                     "--out", tmp / "narrow", *train_args)
        qat = cli("compress", tmp / "source", "--qat", "--batch-size", 32, "--out", tmp / "qat")["compress"]["qat"]
        from edgefit import checkpoint
        from edgefit.compress import stats_of

        narrow_macs = stats_of(checkpoint.build_model(checkpoint.load(tmp / "narrow" / "best.pt")), 96)["macs"]
        lat = latencies({"source": tmp / "source", "pruned": tmp / "pruned", "narrow": tmp / "narrow"})
    drop = src["val_top1"] - pruned["val_top1"]
    speedup = lat["source"] / lat["pruned"]
    result = {
        "benchmark": "structured pruning vs. narrower width at similar MACs; QAT (demo data, 10 x 200, 96 px)",
        "source": {"variant": SOURCE, "epochs": args.epochs, "macs": c["before"]["macs"],
                   "params": c["before"]["params"], "val_top1": src["val_top1"], "latency_ms": lat["source"]},
        "pruned": {"prune_ratio_of_macs": args.prune_ratio, "channel_ratio": c["channel_ratio"], "steps": STEPS,
                   "finetune_epochs": args.finetune_epochs, "macs": c["after"]["macs"], "params": c["after"]["params"],
                   "val_top1": pruned["val_top1"], "latency_ms": lat["pruned"], "macs_removed": c["macs_removed"]},
        "narrow": {"variant": narrow_name, "epochs": total_epochs, "macs": narrow_macs, "val_top1": narrow["val_top1"],
                   "latency_ms": lat["narrow"]},
        "qat_of_source": qat,
        "pruned_top1_drop_points": round(100 * drop, 2),
        "pruned_speedup_vs_source": round(speedup, 3),
        "targets": {"top1_drop_points_max": 1.0, "speedup_min": 1.25},
        "met": {"top1": drop <= 0.01 + 1e-9, "speed": speedup >= 1.25},
        "latency_method": "onnxruntime fp32, batch 1, 2 threads, p50 over >= 1 s; median of 5 interleaved rounds",
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    save("prune_tradeoff", result)


if __name__ == "__main__":
    main()
