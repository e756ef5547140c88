"""Benchmark: export time per format and the cost model's predicted file size vs real files.

For each variant (10 classes, untrained weights: file sizes do not depend on the values), writes
ONNX fp32 + int8 and TFLite fp32 + fp16 + int8 with calibration on demo images, times each export
call, and compares every real file size with `costs.predicted_size_bytes`. With --fit, also solves
for the size model's per-channel / per-op / fixed bytes by least squares on the int8 TFLite files.
Writes bench/results/export_size.json.

    .venv/bin/python bench/export_size.py [--fit]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ["mobilenet_v1_0.25_128", "mobilenet_v1_0.5_160", "mobilenet_v1_1.0_224", "mobilenet_v2_0.35_96",
            "mobilenet_v2_0.5_128", "mobilenet_v2_1.0_224", "mobilenet_v2_1.4_224", "mobilenet_v3_small_0.75_224",
            "mobilenet_v3_small_1.0_224", "mobilenet_v3_large_1.0_224", "mobilenet_v3_large_0.75_224",
            "mobilenet_v3_small_minimal_1.0_224", "mobilenet_v4_conv_small_1.0_224"]
PRECISION_OF = {"fp32": "float32", "fp16": "float16", "int8": "int8"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--fit", action="store_true")
    ap.add_argument("--recompute", action="store_true", help="no exports: re-predict the recorded sizes")
    args = ap.parse_args()
    import torch

    from edgefit import checkpoint, costs, zoo
    from edgefit.data.demo import make_demo_data
    from edgefit.export import export

    stats = costs.zoo_stats(10)
    out = ROOT / "bench" / "results" / "export_size.json"
    if args.recompute:  # predictions of the current cost model against the recorded real sizes
        result = json.loads(out.read_text())
        for r in result["rows"]:
            r["predicted_bytes"] = round(costs.predicted_size_bytes(stats[r["variant"]], PRECISION_OF[r["precision"]]))
            r["error"] = round(r["predicted_bytes"] / r["real_bytes"] - 1, 4)
        result.pop("fit", None)
        result["size_model"] = costs.SIZE_MODEL
        _summarize(result)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_demo_data(tmp / "calib", classes=10, per_class=3, size=96)
        for name in args.variants.split(","):
            v = zoo.get_variant(name)
            torch.manual_seed(0)
            model = zoo.build_model(v, 10).eval()
            ck = tmp / f"{name}.pt"
            checkpoint.save(ck, checkpoint.model_checkpoint(
                model, name, [f"class{i}" for i in range(10)],
                {"resolution": v.resolution, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                 "crop_pct": 0.875, "interpolation": "bilinear"}, {"source": "none"}))
            times = {}
            for fmt, precs in [("onnx", "fp32,int8"), ("tflite", "fp32,fp16,int8")]:
                t = time.perf_counter()
                m = export(ck, tmp / name / fmt, formats=fmt, precisions=precs, calib=str(tmp / "calib"),
                           calib_samples=16, verify=False)
                times[fmt] = round(time.perf_counter() - t, 1)
                for a in m["artifacts"]:
                    pred = costs.predicted_size_bytes(stats[name], PRECISION_OF[a["precision"]])
                    rows.append({"variant": name, "format": a["format"], "precision": a["precision"],
                                 "real_bytes": a["size_bytes"], "predicted_bytes": round(pred),
                                 "error": round(pred / a["size_bytes"] - 1, 4),
                                 "export_seconds_for_format": times[fmt]})
            print(name, times, [(r["format"], r["precision"], r["error"]) for r in rows if r["variant"] == name],
                  flush=True)
    result = {"benchmark": "export time and predicted vs real file size (10 classes)", "rows": rows}
    result["size_model"] = costs.SIZE_MODEL
    _summarize(result)
    if args.fit:
        import numpy as np

        for prec in ("int8", "fp16", "fp32"):
            sel = [r for r in rows if r["format"] == "tflite" and r["precision"] == prec]
            c = costs.SIZE_MODEL[PRECISION_OF[prec]]
            # least squares on relative error, no intercept (a fixed term fits negative)
            w = np.array([1.0 / r["real_bytes"] for r in sel])
            A = np.array([[stats[r["variant"]]["out_channels"], stats[r["variant"]]["ops"]] for r in sel])
            b = np.array([r["real_bytes"] - c["weight"] * stats[r["variant"]]["weight_elems"] for r in sel])
            coef, *_ = np.linalg.lstsq(A * w[:, None], b * w, rcond=None)
            result.setdefault("fit", {})[prec] = {"per_channel": float(coef[0]), "per_op": float(coef[1])}
    result["machine"] = {"cpu_count": os.cpu_count()}
    result["date"] = time.strftime("%Y-%m-%d")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


def _summarize(result: dict) -> None:
    for fmt, prec in [("tflite", "int8"), ("tflite", "fp16"), ("tflite", "fp32"), ("onnx", "int8"), ("onnx", "fp32")]:
        sel = [r for r in result["rows"] if r["format"] == fmt and r["precision"] == prec]
        if sel:
            result.setdefault("size_error", {})[f"{fmt}_{prec}"] = {
                "max_abs": max(abs(r["error"]) for r in sel),
                "share_within_10pct": sum(abs(r["error"]) <= 0.10 for r in sel) / len(sel), "n": len(sel)}


if __name__ == "__main__":
    main()
