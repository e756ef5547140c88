"""Benchmark: a latency model fitted on kernel samples, validated on networks it never saw.

Zoo variants (1000 classes; all of them, or a seeded random --variants N) are deployed as export deploys them
for --runtime at --precision (onnxruntime: ONNX, kernels from its own profiler, kernels.py; litert: TFLite
through onnx2tf, each kernel cut out of the network and timed alone, tflite_kernels.py) and each network is
timed whole. Five folds by variant: the model (latency_model.py) is fitted on the kernels of four fifths of the
variants and predicts the held-out fifth from their kernel lists alone. Also held out: --pruned N networks
(channel-pruned copies of seeded variants, 30% of channels), each predicted by the fold that held out its
source variant, so no fit saw it or what it was cut from. Records the share within +/-10% and the median error
(zoo and pruned apart and together), the old rule's (2 x MACs / flops_per_sec,
bench/results/latency_prediction.json), and the sampling wall time. The ground truth is measured twice (a
second pass after all networks): the share of networks whose two measurements agree within +/-10% is the
ceiling any predictor can show here.
Writes bench/results/kernel_latency.json (onnxruntime fp32) or kernel_latency_<runtime>_<precision>.json.

    .venv/bin/python bench/kernel_latency.py [--runtime litert] [--precision int8] [--threads N]
        [--variants N] [--pruned N] [--samples FILE]   # FILE: reuse (or write) the raw samples
"""
from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _arg(name: str, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


RUNTIME, PRECISION = _arg("--runtime", "onnxruntime"), _arg("--precision", "fp32")
THREADS, VARIANTS, PRUNED = _arg("--threads", 1), _arg("--variants", 0), _arg("--pruned", 5)
FOLDS, PRUNE_RATIO = 5, 0.3


def _networks():
    """[(name, source variant, torch model, resolution)]: the zoo variants, then the pruned networks."""
    import torch

    from edgefit import zoo
    from edgefit.compress import pruned_copy

    pool = list(zoo.variants())
    if VARIANTS:
        pool = random.Random(0).sample(pool, VARIANTS)
    for v in pool:
        torch.manual_seed(0)
        yield v.name, v.name, zoo.build_model(v, 1000).eval(), v.resolution
    for v in random.Random(1).sample(pool, min(PRUNED, len(pool))):
        torch.manual_seed(0)
        yield (f"{v.name}.pruned{PRUNE_RATIO}", v.name,
               pruned_copy(zoo.build_model(v, 1000).eval(), v.resolution, PRUNE_RATIO, 8), v.resolution)


def sample(out: Path | None) -> list[dict]:
    from edgefit.benchmark.latency_profile import network_ms, sample_network
    from edgefit.benchmark.zoo_graph import network

    if out and out.is_file():
        return json.loads(out.read_text())
    nets, blobs, t0 = [], [], time.perf_counter()
    for name, source, model, res in _networks():
        blob = network(model, res, PRECISION, RUNTIME)
        kernels, p50 = sample_network(blob, RUNTIME, THREADS, res)
        nets.append({"name": name, "source": source, "resolution": res, "kernels": kernels, "measured_ms": p50})
        blobs.append(blob)
        print(f"{name}: {p50:.2f} ms, {len(kernels)} kernels, kernel sum {sum(k['us'] for k in kernels) / 1000:.2f}",
              flush=True)
    wall = time.perf_counter() - t0
    for n, blob in zip(nets, blobs, strict=True):  # the second, later measurement of the ground truth
        n["measured_again_ms"] = network_ms(blob, RUNTIME, THREADS, n["resolution"])
        n["sampling_wall_s"] = round(wall, 1)
    if out:
        out.write_text(json.dumps(nets))
    return nets


def _share(errs: list[float]) -> dict:
    errs = [abs(e) for e in errs]
    return {"networks": len(errs), "share_within_10pct": round(sum(e <= 0.10 for e in errs) / len(errs), 4),
            "median_abs_error": round(statistics.median(errs), 4)} if errs else {"networks": 0}


def main() -> None:
    from edgefit.benchmark.latency_model import fit, predict_ms

    samples = Path(sys.argv[sys.argv.index("--samples") + 1]) if "--samples" in sys.argv else None
    nets = sample(samples)
    zoo_nets = [n for n in nets if n["name"] == n["source"]]
    fold_of = {n["name"]: i % FOLDS for i, n in enumerate(zoo_nets)}
    rows = []
    for f in range(FOLDS):
        model = fit([n for n in zoo_nets if fold_of[n["name"]] != f])
        for n in (n for n in nets if fold_of[n["source"]] == f):
            p = predict_ms(model, n["kernels"])
            rows.append({"network": n["name"], "pruned": n["name"] != n["source"],
                         "measured_ms": round(n["measured_ms"], 3), "predicted_ms": round(p, 3),
                         "error": round(p / n["measured_ms"] - 1, 4)})
    changes = [n["measured_again_ms"] / n["measured_ms"] - 1 for n in nets]
    old = json.loads((ROOT / "bench" / "results" / "latency_prediction.json").read_text())
    result = {"benchmark": f"kernel-sample latency model, {RUNTIME} {PRECISION}, {THREADS} thread(s), held-out "
                           f"networks ({FOLDS} folds by zoo variant; pruned networks predicted by the fold that "
                           "held out their source variant)",
              **_share([r["error"] for r in rows]),
              "zoo_variants": _share([r["error"] for r in rows if not r["pruned"]]),
              "pruned_networks": _share([r["error"] for r in rows if r["pruned"]]),
              "ground_truth_repeatability_within_10pct": _share(changes)["share_within_10pct"],
              "ground_truth_repeat_median_abs_change": _share(changes)["median_abs_error"],
              "kernel_samples": sum(len(n["kernels"]) for n in nets),
              "sampling_wall_s": nets[0].get("sampling_wall_s"),
              "old_rule_onnxruntime_fp32": {"share_within_10pct": old["share_within_10pct_scalar"],
                                            "median_abs_error": old["median_abs_error_scalar"]},
              "rows": rows, "date": time.strftime("%Y-%m-%d")}
    name = "kernel_latency" if (RUNTIME, PRECISION) == ("onnxruntime", "fp32") else \
        f"kernel_latency_{RUNTIME}_{PRECISION}"
    (ROOT / "bench" / "results" / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
