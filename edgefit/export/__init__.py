"""`edgefit export`: a trained model to ONNX and TFLite artifacts a mobile build can drop in.

    from edgefit.export import export
    manifest = export("runs/my-run", "artifacts", formats="onnx,tflite", precisions="fp32,int8")
"""
from __future__ import annotations

import hashlib
import platform
import tempfile
from pathlib import Path

from .. import __version__
from ..fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..vocabulary import INT8_GRAPH_RUNTIMES as INT8_RUNTIMES
from .deploy_form import deploy_form, int8_form_differs
from .formats import TARGETS, not_offered, plan

MANIFEST = "edgefit.json"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for lib in ("torch", "timm", "onnx", "onnxruntime", "onnxslim", "onnx2tf", "tensorflow", "ai-edge-litert"):
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return out


def export(source_path: str | Path, out: str | Path, formats: str = "onnx,tflite", precisions: str = "fp32,int8",
           calib=None, calib_samples: int = 500, io: str = "float", verify: bool = True,
           data: str | None = None, samples: int = 200, int8_for: str = "litert",
           max_rel_error: float | None = None, min_agreement: float | None = None) -> dict:
    """Write the requested artifacts, labels.txt and edgefit.json to `out`; verify parity unless told not to.
    `int8_for`: the runtime the int8 graph is shaped for (litert: XNNPACK on a CPU; tflite-micro).
    `calib`: a folder of calibration images, or preprocessed images (N, 3, H, W) as a float array.
    `max_rel_error` / `min_agreement`: verify's bounds instead of its defaults per precision.
    With verify, each format written at both fp32 and int8 is also timed on this host (`precision_speed`,
    export/speed.py); callers that skip verify (bench --variant times the files itself) skip that too.
    Returns the manifest; when verified, its `verify` report is also recorded in edgefit.json with the sha256 of
    each file it checked (a deploy bundle is written only from a file that passed and has not changed since)."""
    import copy

    import numpy as np

    from ..checkpoint import open_source
    from ..data.images import split_images
    from ..errors import BadInput
    from ..trace import measure
    from . import onnx_export, tflite_export

    targets = plan(formats, precisions, io)
    if int8_for not in INT8_RUNTIMES:
        raise BadInput(f"--int8-for: unknown '{int8_for}'; choose from {', '.join(INT8_RUNTIMES)}")
    if calib_samples < 1:
        raise BadInput(f"--calib-samples must be 1 or more, got {calib_samples}")
    source = open_source(source_path)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} is a file; give a directory")
    model = deploy_form(source.model())  # the same function in ops every runtime (TFLM too) has
    int8_model = None
    if any(t.precision == "int8" for t in targets) and int8_form_differs(model, int8_for):
        int8_model = deploy_form(copy.deepcopy(model), int8_for)  # the same function, fast ops for int8
    res = source.preprocess["resolution"]
    stats = measure(model, res)
    ck_bytes = source.checkpoint_path.read_bytes()
    base_meta = {
        "variant": source.ck["variant"], "labels": source.classes, "num_classes": len(source.classes),
        "preprocess": {**source.preprocess, "input_range": "RGB in [0, 1], then (x - mean) / std"},
        "edgefit_version": __version__, "source": {
            "checkpoint": str(source.checkpoint_path.resolve()), "checkpoint_sha256": _sha256(ck_bytes),
            "run_dir": str(source.run_dir.resolve()) if source.run_dir else None},
        "macs": stats.macs, "params": stats.params,
        "int8_graph": {"for": int8_for, "hard_swish": "(x / 6) * relu6(x + 3)" if int8_model is not None
                       else "as the float graph"},
    }
    calib_x = None
    if any(t.precision == "int8" for t in targets) or any(t.format == "tflite" for t in targets):
        calib_x = (calib[:calib_samples].astype(np.float32) if isinstance(calib, np.ndarray)
                   else split_images(source, "train", calib, calib_samples).x.numpy().astype(np.float32))
        base_meta["calibration"] = {"images": "array" if isinstance(calib, np.ndarray) else str(calib or "train split"),
                                    "samples": int(len(calib_x))}
    out.mkdir(parents=True, exist_ok=True)
    artifacts = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32_bytes = onnx_export.to_onnx_bytes(model, res, {**base_meta, "edgefit_layout": "NCHW",
                                                             "edgefit_precision": "fp32"})
        fp32_path = Path(tmp) / "model.onnx"
        fp32_path.write_bytes(fp32_bytes)
        int8_src = fp32_path
        if int8_model is not None:
            int8_src = Path(tmp) / "int8" / "model.onnx"  # onnx2tf names its outputs after the input file
            int8_src.parent.mkdir()
            int8_src.write_bytes(onnx_export.to_onnx_bytes(int8_model, res, {}))
        blobs: dict = {}
        for t in targets:
            if t.format == "onnx" and t.precision == "fp32":
                blobs[t] = fp32_bytes
            elif t.format == "onnx" and t.precision == "int8":
                q = Path(tmp) / "model_int8.onnx"
                onnx_export.quantize_int8(int8_src, q, calib_x, {**base_meta, "edgefit_layout": "NCHW",
                                                                  "edgefit_precision": "int8"})
                blobs[t] = q.read_bytes()
        tfl = [t.precision for t in targets if t.format == "tflite"]
        groups = [tfl] if int8_src == fp32_path else [[p for p in tfl if p != "int8"], [p for p in tfl if p == "int8"]]
        for precs in groups:  # one onnx2tf run per source graph
            if precs:
                converted = tflite_export.convert(int8_src if precs == ["int8"] else fp32_path, precs, calib_x, io)
                blobs.update({TARGETS[("tflite", p)]: converted[p] for p in precs})
        for t, blob in blobs.items():
            atomic_write_bytes(out / t.file, blob)
            artifacts.append(_describe(t, blob, stats))
    atomic_write_bytes(out / "reference.pt", ck_bytes)
    atomic_write_text(out / "labels.txt", "".join(c + "\n" for c in source.classes))
    manifest = {**base_meta, "artifacts": artifacts, "not_written": not_offered(formats, precisions),
                "reference_checkpoint": "reference.pt", "versions": _versions()}
    atomic_write_json(out / MANIFEST, manifest)
    if verify:
        from .speed import compare
        from .verify import verify as run_verify

        bounds = {"data": data, "samples": samples, "max_rel_error": max_rel_error, "min_agreement": min_agreement}
        report = run_verify(out, **bounds)
        if calib_x is not None and _fall_back(out, manifest, calib_x, report, stats, data):
            report = run_verify(out, **bounds)
        manifest["verify"] = {**report, "artifact_sha256": {a["file"]: a["sha256"] for a in manifest["artifacts"]}}
        speeds = compare(out, manifest["artifacts"])
        if speeds:  # int8 against fp32 on this host, per format written at both
            manifest["precision_speed"] = [s.to_dict() for s in speeds]
        atomic_write_json(out / MANIFEST, manifest)
    return manifest


def _fall_back(out: Path, manifest: dict, calib_x, report: dict, stats, data: str | None) -> bool:
    """Every int8 artifact below its agreement floor keeps its most sensitive layers float (int8_layers.py,
    tflite_layers.py); each attempt is recorded on its artifact (`float_fallback`). True when one was rewritten."""
    from . import fallback

    records = fallback.repair(out, manifest, calib_x, report, data)
    for record in records:
        i = next(i for i, a in enumerate(manifest["artifacts"]) if a["file"] == record["file"])
        if record["passed"]:
            a = manifest["artifacts"][i]
            manifest["artifacts"][i] = _describe(TARGETS[(a["format"], "int8")], (out / record["file"]).read_bytes(),
                                                 stats)
        manifest["artifacts"][i]["float_fallback"] = record
    if records:
        atomic_write_json(out / MANIFEST, manifest)
    return any(r["passed"] for r in records)


def _describe(t, blob: bytes, stats) -> dict:
    from .delegation import onnx_float_islands, tflite_undelegated
    from .tflite_export import io_details

    d = {"file": t.file, "format": t.format, "precision": t.precision, "runtime": t.runtime,
         "input_layout": t.layout, "size_bytes": len(blob), "size_kb": round(len(blob) / 1024, 1),
         "sha256": _sha256(blob), "macs": stats.macs, "params": stats.params}
    if t.format == "tflite":
        details = io_details(blob)
        d.update(input=details["input"], output=details["output"])
        if t.precision == "int8":
            d["undelegated_ops"] = tflite_undelegated(blob)  # outside XNNPACK: each splits the graph
    else:
        import onnx

        proto = onnx.load_from_string(blob)
        shape = [dim.dim_value for dim in proto.graph.input[0].type.tensor_type.shape.dim]
        d.update(input={"name": proto.graph.input[0].name, "dtype": "float32", "shape": shape, "quantization": None},
                 output={"name": proto.graph.output[0].name, "dtype": "float32", "quantization": None})
        if t.precision == "int8":
            d["quantization"] = ("QDQ: static uint8 activations (per tensor, asymmetric), int8 per-channel "
                                 "symmetric weights in 7-bit range (reduce_range)")
            d["float_islands"] = onnx_float_islands(blob)  # compute nodes onnxruntime still runs in float
    return d


