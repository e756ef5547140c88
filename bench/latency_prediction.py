"""Benchmark: how far the cost model's latency prediction, calibrated on this host, is from measured.

`edgefit calibrate` (onnxruntime, 2 threads) gives this host's effective FLOP/s, overall and per op
class. Then every zoo variant (1000 classes) is exported to ONNX fp32 and timed on onnxruntime with 2
threads; the prediction is 2 x MACs / flops_per_sec (scalar) and, per op class, the sum of each class's
MACs at its own rate. Records the share of variants predicted within +/-10% of measured for both.
Writes bench/results/latency_prediction.json.

    .venv/bin/python bench/latency_prediction.py
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREADS = 2


def main() -> None:
    import torch

    from edgefit import costs, zoo
    from edgefit.benchmark.calibrate import calibrate
    from edgefit.budget import budget_from_mapping
    from edgefit.runtimes import ort_session
    from edgefit.timing import measure

    cal = calibrate(("onnxruntime",), threads=THREADS)["runtimes"]["onnxruntime"]
    base = {"name": "host", "storage_kb": 1, "target_fps": 1, "min_accuracy": 0.0,
            "flops_per_sec": cal["flops_per_sec"]}
    scalar = budget_from_mapping(base)
    per_class = budget_from_mapping({**base, "op_flops_per_sec": cal["op_flops_per_sec"]})
    stats = costs.zoo_stats(1000)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for v in zoo.variants():
            torch.manual_seed(0)
            model = zoo.build_model(v, 1000).eval()
            path = Path(tmp) / "m.onnx"
            torch.onnx.export(model, (torch.zeros(1, 3, v.resolution, v.resolution),), str(path), dynamo=False,
                              opset_version=17, input_names=["input"])
            sess = ort_session(path, THREADS)
            feed = {"input": torch.randn(1, 3, v.resolution, v.resolution).numpy()}
            run = lambda sess=sess, feed=feed: sess.run(None, feed)  # noqa: E731
            measured = measure(run, min_runs=20, min_seconds=0.5)["p50_ms"]
            s = stats[v.name]
            p1 = costs.latency_seconds(s, scalar) * 1000
            p2 = costs.latency_seconds(s, per_class) * 1000
            rows.append({"variant": v.name, "macs": s["macs"], "measured_ms": round(measured, 3),
                         "predicted_scalar_ms": round(p1, 3), "predicted_per_class_ms": round(p2, 3),
                         "error_scalar": round(p1 / measured - 1, 4), "error_per_class": round(p2 / measured - 1, 4)})
            print(json.dumps(rows[-1]), flush=True)

    def share(key):
        return round(sum(abs(r[key]) <= 0.10 for r in rows) / len(rows), 4)

    result = {"benchmark": "cost-model latency prediction vs measured, onnxruntime fp32, 2 threads, all zoo variants",
              "calibration": {"flops_per_sec": cal["flops_per_sec"], "op_flops_per_sec": cal["op_flops_per_sec"]},
              "share_within_10pct_scalar": share("error_scalar"),
              "share_within_10pct_per_class": share("error_per_class"),
              "median_abs_error_scalar": sorted(abs(r["error_scalar"]) for r in rows)[len(rows) // 2],
              "median_abs_error_per_class": sorted(abs(r["error_per_class"]) for r in rows)[len(rows) // 2],
              "reference": "the best published latency predictor (nn-Meter) reaches 99% within +/-10% on a phone CPU",
              "rows": rows, "date": time.strftime("%Y-%m-%d")}
    (ROOT / "bench" / "results" / "latency_prediction.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
