"""`edgefit verify`: do the exported artifacts agree with the PyTorch model they came from?

Every artifact runs on the same preprocessed validation images, with its own layout and
quantization (runtimes.py). Float artifacts are held to a maximum output error relative to the
output range; every artifact to a top-1 agreement with PyTorch. When a float ONNX artifact fails,
the first diverging layer is found by exposing every intermediate tensor of the artifact and of a
fresh export of the reference model (export/divergence.py; for TFLite, mapped back to the ONNX graph).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BadInput

if TYPE_CHECKING:
    import numpy as np

# Documented defaults; override with --max-rel-error / --min-agreement.
MIN_PARITY_IMAGES = 200  # a smaller validation split is topped up with training images for the agreement

TOLERANCES = {
    "fp32": {"max_rel_error": 1e-4, "min_agreement": 0.99},
    "fp16": {"max_rel_error": 2e-2, "min_agreement": 0.98},
    "int8": {"max_rel_error": None, "min_agreement": 0.98},
}


@dataclass(frozen=True)
class ParityInputs:
    """What every artifact of an export directory is compared on: the images and the reference logits."""

    manifest: dict
    ck: dict
    model: object  # the PyTorch reference network
    xs: np.ndarray  # preprocessed NCHW float32 images
    labels: np.ndarray
    n_val: int  # the first n_val images are the validation split (accuracy); the rest top up the agreement
    ref: np.ndarray  # the reference network's logits on xs
    images: str  # where the images came from, in words
    source: object  # checkpoint.Source of the reference (its run directory when it is still there)


def parity_inputs(art_dir: Path, data: str | None = None, samples: int = 200) -> ParityInputs:
    import numpy as np
    import torch

    from . import checkpoint
    from .data.images import split_images
    from .runtimes import torch_logits

    manifest_path = art_dir / "edgefit.json"
    if not manifest_path.is_file():
        raise BadInput(f"{art_dir} has no edgefit.json; give a directory written by `edgefit export`")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(f"{manifest_path} is not valid JSON ({e}); export again with `edgefit export`") from None
    ck_path = art_dir / manifest.get("reference_checkpoint", "reference.pt")
    ck = checkpoint.load(ck_path)
    run_dir = manifest["source"].get("run_dir")
    source = checkpoint.Source(ck_path, ck, Path(run_dir) if run_dir and Path(run_dir, "split.json").is_file()
                               else None)
    if samples < 1:
        raise BadInput(f"--samples must be 1 or more, got {samples}")
    val = split_images(source, "val", data, samples)
    x, labels = val.x, torch.from_numpy(val.labels)
    n_val = len(x)
    want = min(samples, MIN_PARITY_IMAGES)
    if n_val < want and data is None and source.run_dir is not None:
        # agreement is a statement about two models on the same inputs: top a small validation split up
        # with training images so that one disagreement is not the difference between pass and fail
        extra = split_images(source, "train", None, want - n_val)
        x, labels = torch.cat([x, extra.x]), torch.cat([labels, torch.from_numpy(extra.labels)])
    model = checkpoint.build_model(ck)
    images = "--data" if data else "validation split of the training run"
    if len(x) > n_val:
        images += f" ({n_val}) + {len(x) - n_val} training images"
    return ParityInputs(manifest, ck, model, x.numpy().astype(np.float32), labels.numpy(), n_val,
                        torch_logits(model, x), images, source)


def verify(art_dir: str | Path, data: str | None = None, samples: int = 200,
           max_rel_error: float | None = None, min_agreement: float | None = None, layers: bool = False) -> dict:
    """Compare every artifact with the reference network; `layers`: also each int8 ONNX artifact's per-layer
    quantization error, worst first (export/int8_layers.py)."""
    import numpy as np

    from .runtimes import runner

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
    from .export import divergence

    res = p.ck["preprocess"]["resolution"]
    if art["format"] == "onnx":
        return divergence.onnx_first_divergence(path, p.model, p.xs[:1], res, tol)
    return divergence.tflite_first_divergence(path, p.model, p.xs[:1], res, tol, art.get("input_layout"))


def _layers(p: ParityInputs, art_dir: Path, path: Path, art: dict) -> dict:
    """{"layers": each quantized layer's error, worst first, ...} for an int8 artifact (export/int8_layers.py,
    export/tflite_layers.py)."""
    import tempfile

    from .export.int8_layers import LAYER_IMAGES, float_graph, layer_errors

    if art["format"] == "onnx":
        with tempfile.TemporaryDirectory() as tmp:
            return {"layers": layer_errors(path, float_graph(art_dir, p.manifest, Path(tmp) / "pre.onnx"),
                                           p.xs[:LAYER_IMAGES])}
    if art["input"]["dtype"] != "float32":
        return {"layers": None, "layers_not_measured": "int8 input/output graph (LiteRT's quantization debugger "
                                                       "takes float input/output)"}
    from .export import tflite_layers

    calib, where = calibration_images(p)
    return {**tflite_layers.layers(art_dir, p.manifest, path, calib, p.xs, p.ref.argmax(1)),
            "layers_calibration": where}


def calibration_images(p: ParityInputs) -> tuple[np.ndarray, str]:
    """The images an int8 TFLite artifact is requantized with to measure its layers: those export calibrated it
    with when the manifest says so and they are still there, else the parity images (said in the report)."""
    import numpy as np

    from .data.images import split_images

    cal = p.manifest.get("calibration") or {}
    images = cal.get("images")
    folder = images if images not in (None, "train split", "array") and Path(images).is_dir() else None
    if folder or (images == "train split" and p.source.run_dir is not None):
        x = split_images(p.source, "train", folder, cal["samples"]).x.numpy().astype(np.float32)
        return x, f"as exported ({len(x)} images, {images})"
    return p.xs, f"the {len(p.xs)} parity images (the export's calibration images are not at hand)"
