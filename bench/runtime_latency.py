"""Benchmark: latency of each runtime and precision on this host, as ratios to onnxruntime fp32.

For each variant (10 classes, untrained weights: latency does not depend on the values), exports
ONNX fp32/int8 and TFLite fp32/int8 (calibrated on demo images), then times torch eager fp32,
onnxruntime fp32, onnxruntime int8, LiteRT fp32 and LiteRT int8 with `edgefit bench` (2 threads,
batch 1, p50 over >= 30 runs and >= 1 s). Records the ops each int8 artifact leaves outside its runtime's fast
path (edgefit.json) and summarises int8 vs fp32 (results/runtime_latency_before.json: before the int8 graph was
shaped for XNNPACK). Records the CPU's flags that decide int8 speed on x86 (AVX2, AVX512, VNNI, AMX). Writes
bench/results/runtime_latency.json, or --out NAME (a file per host: runtime_latency_xeon.json).

    .venv/bin/python bench/runtime_latency.py [--out runtime_latency_xeon.json]
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ["mobilenet_v1_0.25_128", "mobilenet_v1_1.0_224", "mobilenet_v2_0.35_96", "mobilenet_v2_1.0_224",
            "mobilenet_v3_small_1.0_224", "mobilenet_v3_large_1.0_224", "mobilenet_v4_conv_small_1.0_224"]
COLUMNS = {("torch", "ref"): "torch_fp32", ("onnxruntime", "fp32"): "ort_fp32", ("onnxruntime", "int8"): "ort_int8",
           ("litert", "fp32"): "litert_fp32", ("litert", "int8"): "litert_int8"}


FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def cpu_flags() -> list[str]:
    """The flags of FLAGS this CPU has (x86 /proc/cpuinfo; empty elsewhere)."""
    try:
        line = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags"))
    except (OSError, StopIteration):
        return []
    have = set(line.split(":", 1)[1].split())
    return [f for f in FLAGS if f in have]


def main() -> None:
    import torch

    from edgefit import checkpoint, zoo
    from edgefit.benchmark.api import BenchOptions, bench
    from edgefit.data.demo import make_demo_data
    from edgefit.export import export

    table = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_demo_data(tmp / "calib", classes=10, per_class=3, size=96)
        for name in VARIANTS:
            v = zoo.get_variant(name)
            torch.manual_seed(0)
            ck = tmp / f"{name}.pt"
            checkpoint.save(ck, checkpoint.model_checkpoint(
                zoo.build_model(v, 10).eval(), name, [f"c{i}" for i in range(10)],
                {"resolution": v.resolution, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                 "crop_pct": 0.875, "interpolation": "bilinear"}, {"source": "none"}))
            art = tmp / name
            m = export(ck, art, formats="onnx,tflite", precisions="fp32,int8", calib=str(tmp / "calib"),
                       calib_samples=16, verify=False)
            report = bench([str(art)], BenchOptions(threads=2, min_runs=30, min_seconds=1.0))
            row = {"variant": name}
            by_file = {a["file"]: a for a in m["artifacts"]}
            row["litert_int8_undelegated_ops"] = by_file["model_int8.tflite"]["undelegated_ops"]
            row["ort_int8_float_islands"] = by_file["model_int8.onnx"]["float_islands"]
            for r in report["results"]:
                col = COLUMNS.get((r["runtime"], r["precision"] or "ref"))
                if col:
                    row[f"{col}_ms"] = round(r["p50_ms"], 3)
            base = row["ort_fp32_ms"]
            row["ratio_to_ort_fp32"] = {c: round(row[f"{c}_ms"] / base, 2) for c in COLUMNS.values()}
            table.append(row)
            print(json.dumps(row), flush=True)
    result = {"benchmark": "p50 latency per runtime (2 threads, batch 1), ratio to onnxruntime fp32",
              "machine": {**report["machine"], "cpu_flags": cpu_flags()}, "rows": table,
              "date": time.strftime("%Y-%m-%d"),
              "summary": {
                  "litert_int8_over_fp32_max": max(r["litert_int8_ms"] / r["litert_fp32_ms"] for r in table),
                  "ort_int8_not_slower_than_fp32": sum(r["ort_int8_ms"] <= r["ort_fp32_ms"] for r in table),
                  "variants": len(table),
                  "undelegated_litert_int8_ops": sum(o["count"] for r in table
                                                     for o in r["litert_int8_undelegated_ops"])}}
    print(json.dumps(result["summary"]))
    name = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else "runtime_latency.json"
    (ROOT / "bench" / "results" / name).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
