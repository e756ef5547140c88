"""Benchmark: how well does the candidate search rank candidates? Today's equal short runs vs ASHA on Ray Tune.

Demo data (`edgefit demo-data`, 10 classes x PER_CLASS images at 96 px), the six candidates `edgefit build`
would search for BUDGET at <= 96 px from scratch (select's first six; budgets/raspberry-pi-4.yaml admits ten).
Ground truth: each candidate trained the full FULL epochs (`edgefit train` defaults otherwise); its best
validation top-1. ASHA: grace --grace (default: the build's), reduction factor 2, at most FULL epochs, on a
local Ray instance (this machine's CPUs). Local search at equal total epochs: ASHA's total split evenly into
equal short runs (what `--executor local` does), and the build's default short run (FULL // 4 epochs each) for
reference. All rank by best validation top-1; reported: Spearman rank correlation with the ground truth,
whether the true best was picked, and the total epochs each spent. Writes
bench/results/search_quality_grace<G>.json.

    .venv/bin/python bench/search_quality.py [--budget budgets/raspberry-pi-4.yaml] [--per-class 100] [--full 16]
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
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    from record import save
    from scipy.stats import spearmanr

    from edgefit.budget import load_budget
    from edgefit.data.folder import scan
    from edgefit.pipeline import BuildOptions
    from edgefit.pipeline.runs import TEST_FRACTION, VAL_FRACTION
    from edgefit.pipeline.search import SearchOptions, run_local, run_ray
    from edgefit.pipeline.steps import stage_select

    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--full", type=int, default=16)
    ap.add_argument("--budget", default=str(ROOT / "budgets" / "raspberry-pi-4.yaml"))
    ap.add_argument("--grace", type=int, default=SearchOptions().grace_period, help="ASHA grace period (epochs)")
    ap.add_argument("--truth", help="a previous result JSON: reuse its ground truth (same candidates, --full, "
                                    "--per-class) instead of training every candidate in full again")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="search-quality-"))
    data = tmp / "demo"
    subprocess.run([str(Path(sys.executable).with_name("edgefit")), "demo-data", str(data), "--classes", "10",
                    "--per-class", str(args.per_class), "--size", "96"], check=True, capture_output=True)
    budget = load_budget(Path(args.budget)).with_num_classes(10)
    sel = stage_select(budget.model_copy(update={"min_accuracy": 0.0}), "accuracy", 96, "none")
    names = [c["name"] for c in sel.feasible[:6]]
    split = scan(data, seed=0, val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION)
    say = print
    rows = {}

    def timed(label, fn):
        t = time.perf_counter()
        out = fn()
        rows[label] = {"seconds": round(time.perf_counter() - t, 1), "trials": out}
        print(label, json.dumps(rows[label]), flush=True)
        return out

    full = BuildOptions(data=str(data), weights="none", epochs=args.full, search_epochs=args.full)
    if args.truth:
        old = json.loads(Path(args.truth).read_text())
        if (old["candidates"], old["full_epochs"], old["data"]) != (names, args.full, f"demo-data 10 classes x "
                                                                    f"{args.per_class} at 96 px"):
            sys.exit(f"{args.truth}: another benchmark setting; its ground truth does not apply")
        truth = [{"val_top1": old["ground_truth_val_top1"][n]} for n in names]
    else:
        truth = timed("full_training", lambda: run_local(names, split, full, "int8", tmp / "full", True, say))
    so = SearchOptions(executor="ray", grace_period=args.grace, reduction_factor=2, max_epochs=args.full)
    short = BuildOptions(data=str(data), weights="none", epochs=args.full)
    asha = timed("ray_asha", lambda: run_ray(names, split, short, so, "int8", tmp / "ray", say))
    each = max(1, round(sum(t["epochs"] for t in asha) / len(names)))  # ASHA's total, split evenly
    equal = BuildOptions(data=str(data), weights="none", epochs=args.full, search_epochs=each)
    local = timed("local_equal_total", lambda: run_local(names, split, equal, "int8", tmp / "local", True, say))
    default = local if equal.short_epochs == short.short_epochs else timed(  # the same runs: not trained twice
        "local_default_short_runs", lambda: run_local(names, split, short, "int8", tmp / "default", True, say))

    true_acc = [t["val_top1"] for t in truth]
    best = names[max(range(len(names)), key=lambda i: true_acc[i])]
    result = {"data": f"demo-data 10 classes x {args.per_class} at 96 px", "candidates": names,
              "full_epochs": args.full, "ground_truth_val_top1": dict(zip(names, true_acc, strict=True)),
              "true_best": best}
    for label, trials in (("local_equal_total", local), ("ray_asha", asha), ("local_default_short_runs", default)):
        acc = [t["val_top1"] for t in trials]
        rho = spearmanr(acc, true_acc).statistic
        picked = names[max(range(len(names)), key=lambda i: acc[i])]
        result[label] = {"spearman_vs_full": None if rho != rho else round(float(rho), 3), "picked": picked,
                         "picked_true_best": picked == best,
                         "picked_full_val_top1": true_acc[names.index(picked)],
                         "total_epochs": sum(t["epochs"] for t in trials), "seconds": rows[label]["seconds"],
                         "trials": [{k: t[k] for k in ("variant", "epochs", "val_top1", "stopped_because")}
                                    for t in trials]}
    result["asha"] = {"grace_period": args.grace, "reduction_factor": 2, "max_epochs": args.full}
    result["ground_truth_from"] = args.truth or "trained here"
    save(f"search_quality_grace{args.grace}", result)


if __name__ == "__main__":
    main()
