"""`edgefit verify`: do the exported artifacts agree with the PyTorch model they came from?

Every artifact runs on the same preprocessed validation images (parity.py), with its own layout and
quantization (runtimes.py). Float artifacts are held to a maximum output error relative to the
output range; every artifact to a top-1 agreement with PyTorch. When a float ONNX artifact fails,
the first diverging layer is found by exposing every intermediate tensor of the artifact and of a
fresh export of the reference model (divergence.py; for TFLite, mapped back to the ONNX graph).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import BadInput
from ..runtimes import runner
from . import divergence, tflite_layers
from .int8_layers import LAYER_IMAGES, float_graph, layer_errors
from .parity import TOLERANCES, ParityInputs, calibration_images, parity_inputs


def verify(art_dir: str | Path, data: str | None = None, samples: int = 200,
           max_rel_error: float | None = None, min_agreement: float | None = None, layers: bool = False) -> dict:
    """Compare every artifact with the reference network; `layers`: also each int8 ONNX artifact's per-layer
    quantization error, worst first (export/int8_layers.py)."""
    import numpy as np


    art_dir = Path(art_dir)
    p = parity_inputs(art_dir, data, samples)
    manifest, xs, labels, n_val, ref = p.manifest, p.xs, p.labels, p.n_val, p.ref
    out_range = float(ref.max() - ref.min()) or 1.0
    ref_top1 = ref.argmax(1)
    results = []
    for art in manifest["artifacts"]:
        path = art_dir / art["file"]
        if not path.is_file():
            raise BadInput(f"{path} is listed in edgefit.json but missing")
        y = runner(path, meta=art)(xs)
        tol = dict(TOLERANCES[art["precision"]])
        if max_rel_error is not None:  # applies to every artifact, int8 too (which has no default bound)
            tol["max_rel_error"] = max_rel_error
        if min_agreement is not None:
            tol["min_agreement"] = min_agreement
        abs_err = float(np.abs(y - ref).max())
        rel_err = abs_err / out_range
        agreement = float((y.argmax(1) == ref_top1).mean())
        r = {"file": art["file"], "format": art["format"], "precision": art["precision"],
             "max_abs_error": abs_err, "max_rel_error": rel_err, "top1_agreement": agreement,
             "top1_accuracy": float((y[:n_val].argmax(1) == labels[:n_val]).mean()), "tolerance": tol,
             "reasons": []}
        if tol["max_rel_error"] is not None and rel_err > tol["max_rel_error"]:
            r["reasons"].append(f"max relative error {rel_err:.2e} > {tol['max_rel_error']:.0e}")
        if agreement < tol["min_agreement"]:
            r["reasons"].append(f"top-1 agreement {agreement:.3f} < {tol['min_agreement']}")
        r["passed"] = not r["reasons"]
        if not r["passed"] and art["precision"] != "int8":
            r["first_divergence"] = _first_divergence(p, path, art, tol["max_rel_error"] or 1e-4)
        if layers and art["precision"] == "int8":
            r.update(_layers(p, art_dir, path, art))
        results.append(r)
    return {"passed": all(r["passed"] for r in results), "samples": int(len(xs)), "images": p.images,
            "accuracy_images": int(n_val), "torch_top1_accuracy": float((ref_top1[:n_val] == labels[:n_val]).mean()),
            "output_range": out_range,
            "artifacts": results}


def _first_divergence(p: ParityInputs, path: Path, art: dict, tol: float) -> dict | None:
    """Where a failing float artifact departs from the reference network (export/divergence.py)."""
    res = p.ck["preprocess"]["resolution"]
    if art["format"] == "onnx":
        return divergence.onnx_first_divergence(path, p.model, p.xs[:1], res, tol)
    return divergence.tflite_first_divergence(path, p.model, p.xs[:1], res, tol, art.get("input_layout"))


def _layers(p: ParityInputs, art_dir: Path, path: Path, art: dict) -> dict:
    """{"layers": each quantized layer's error, worst first, ...} for an int8 artifact (export/int8_layers.py,
    export/tflite_layers.py)."""
    import tempfile


    if art["format"] == "onnx":
        with tempfile.TemporaryDirectory() as tmp:
            return {"layers": layer_errors(path, float_graph(art_dir, p.manifest, Path(tmp) / "pre.onnx"),
                                           p.xs[:LAYER_IMAGES])}
    if art["input"]["dtype"] != "float32":
        return {"layers": None, "layers_not_measured": "int8 input/output graph (LiteRT's quantization debugger "
                                                       "takes float input/output)"}
    calib, where = calibration_images(p)
    return {**tflite_layers.layers(art_dir, p.manifest, path, calib, p.xs, p.ref.argmax(1)),
            "layers_calibration": where}
