"""The float fallback of an export: every int8 artifact below its agreement floor keeps its most sensitive layers
float, with the smallest count that passes (ONNX through int8_layers.py, TFLite through LiteRT's quantization
debugger in tflite_layers.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fsutil import atomic_write_bytes
from . import int8_layers, tflite_layers
from .parity import parity_inputs


def repair(art_dir: Path, manifest: dict, calib: np.ndarray, parity: dict, data: str | None = None) -> list[dict]:
    """Every int8 artifact of `art_dir` that misses its agreement floor (`parity`: the verify report) keeps its most
    sensitive layers float with the smallest count that passes (ONNX here, TFLite in tflite_layers.py); an artifact
    is rewritten only then. Returns one record per failing artifact for the manifest (also when nothing passed)."""
    failed = [r for r in parity["artifacts"] if r["precision"] == "int8"
              and r["top1_agreement"] < r["tolerance"]["min_agreement"]]
    if not failed:
        return []
    p = parity_inputs(art_dir, data, parity["samples"])
    ref_top1 = p.ref.argmax(1)
    entries = {a["file"]: a for a in manifest["artifacts"]}
    records = []
    for f in failed:
        path, floor = art_dir / f["file"], f["tolerance"]["min_agreement"]
        record = {"file": f["file"], "agreement_before": f["top1_agreement"]}
        if f["format"] == "onnx":
            fb, ranked, new = int8_layers.onnx_fallback(art_dir, manifest, calib, path, p.xs, ref_top1, floor)
        elif entries[f["file"]]["input"]["dtype"] == "float32":
            fb, ranked, new = tflite_layers.repair(art_dir, manifest, calib, p.xs, ref_top1, floor)
        else:  # a full-integer graph for a microcontroller: a float layer there runs TFLM's reference float kernels
            records.append({**record, "passed": False, "not_tried": "int8 input/output (a microcontroller graph): "
                            "a float layer would run on TFLM's reference float kernels; use QAT"})
            continue
        record.update(**fb.to_dict(), worst_layers=ranked[:5])
        if new is not None:
            old = path.read_bytes()
            record.update(size_bytes_before=len(old), size_bytes=len(new),
                          p50_ms_before=round(int8_layers.p50_ms(old, f["format"], p.xs), 3),
                          p50_ms=round(int8_layers.p50_ms(new, f["format"], p.xs), 3))
            atomic_write_bytes(path, new)
        records.append(record)
    return records
