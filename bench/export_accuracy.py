"""Benchmark: accuracy of every exported artifact against the float PyTorch model on demo data.

Takes a trained run directory (default runs/demo-build/train from `make demo`; bench/train_speed.py's
settings give a stronger one), exports ONNX and TFLite at fp32, fp16 and int8, verifies on the whole
validation split, and records each artifact's top-1, its drop vs PyTorch in points, top-1 agreement,
and the export time; and, when the run has a held-out test split (a build's run), each artifact's top-1 and
drop on it, as the build's evaluate stage measures them. Target (#14): int8 TFLite drop <= 0.5 point on the
test split. Writes
bench/results/export_accuracy.json.

    .venv/bin/python bench/export_accuracy.py [--run RUN_DIR]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default=str(ROOT / "runs" / "demo-build" / "train"))
    args = ap.parse_args()
    from edgefit.export import export

    summary = json.loads((Path(args.run) / "summary.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        manifest = export(args.run, Path(tmp) / "art", formats="onnx,tflite", precisions="fp32,fp16,int8",
                          samples=100000)
        seconds = time.perf_counter() - t
        test = _test_split(Path(tmp) / "art", Path(args.run))
    report = manifest["verify"]
    torch_top1 = report["torch_top1_accuracy"]
    rows = [{"file": r["file"], "top1": round(r["top1_accuracy"], 4),
             "drop_points": round(100 * (torch_top1 - r["top1_accuracy"]), 2),
             "top1_agreement": round(r["top1_agreement"], 4), "max_rel_error": r["max_rel_error"],
             "passed": r["passed"]} for r in report["artifacts"]]
    result = {"benchmark": "exported artifacts vs PyTorch on the validation split",
              "run": summary["variant"], "val_images": report["samples"], "torch_top1": torch_top1,
              "artifacts": rows, "test_split": test, "export_and_verify_seconds": round(seconds, 1),
              "fallbacks": {a["file"]: a["float_fallback"] for a in manifest["artifacts"] if "float_fallback" in a},
              "target": "int8 TFLite drop <= 0.5 point on the test split", "date": time.strftime("%Y-%m-%d")}
    out = ROOT / "bench" / "results" / "export_accuracy.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _test_split(art: Path, run: Path) -> dict | None:
    """Top-1 of every artifact and of PyTorch on the run's held-out test split (None: the run has none)."""
    from edgefit.errors import EdgefitError
    from edgefit.pipeline.steps import stage_evaluate

    try:
        ev = stage_evaluate(art, run)
    except EdgefitError:
        return None
    if not ev.test_images:
        return None
    return {"images": ev.test_images, "torch_top1": round(ev.float_top1, 4),
            "artifacts": {f: {"top1": round(t, 4), "drop_points": round(100 * (ev.float_top1 - t), 2)}
                          for f, t in ev.artifact_top1.items()}}


if __name__ == "__main__":
    main()
