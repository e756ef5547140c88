"""Run an artifact on preprocessed NCHW float images with its own layout and quantization.

Every consumer (verify, bench, errors, build) goes through these wrappers: the input layout comes from
the artifact's entry in `edgefit.json` (a foreign model without one: guessed from a 1- or 3-channel last
dimension), dtype and scale/zero-point from the model itself, so an NHWC int8 TFLite and an NCHW float
ONNX are fed the same images correctly.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def ort_session(model, threads: int = 0, providers=None, optimize: bool = True):
    """An onnxruntime session for a model file or serialized bytes: quiet, `threads` intra-op threads
    (0: the runtime's default), CPU unless `providers` say otherwise, graph optimizations switchable."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = model if isinstance(model, (bytes, bytearray)) else str(model)
    return ort.InferenceSession(source, so, providers=providers or ["CPUExecutionProvider"])


def _guess_layout(shape) -> str:
    return "NHWC" if (len(shape) == 4 and shape[-1] in (1, 3)) else "NCHW"


def manifest_entry(path: Path) -> dict | None:
    """The artifact's entry in the edgefit.json beside it, if any."""
    import json

    mf = Path(path).parent / "edgefit.json"
    if not mf.is_file():
        return None
    try:
        arts = json.loads(mf.read_text()).get("artifacts", [])
    except ValueError:
        return None
    return next((a for a in arts if a.get("file") == Path(path).name), None)


class OnnxRunner:
    def __init__(self, path: Path, threads: int = 0, providers=None, layout: str | None = None):
        self.session = ort_session(path, threads, providers)
        self.input = self.session.get_inputs()[0]
        self.output = self.session.get_outputs()[0].name
        self.layout = layout or _guess_layout(self.input.shape)

    def __call__(self, x_nchw: np.ndarray) -> np.ndarray:
        x = x_nchw.transpose(0, 2, 3, 1) if self.layout == "NHWC" else x_nchw
        outs = [self.session.run([self.output], {self.input.name: x[i:i + 1].astype(np.float32)})[0]
                for i in range(len(x))]
        return np.concatenate(outs).astype(np.float32)


class TfliteRunner:
    def __init__(self, path_or_bytes, threads: int = 0, preserve_all_tensors: bool = False, layout: str | None = None):
        from ai_edge_litert.interpreter import Interpreter

        kw = {"num_threads": threads} if threads else {}
        if isinstance(path_or_bytes, (bytes, bytearray)):
            kw["model_content"] = bytes(path_or_bytes)
        else:
            kw["model_path"] = str(path_or_bytes)
        self.it = Interpreter(experimental_preserve_all_tensors=preserve_all_tensors, **kw)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.out = self.it.get_output_details()[0]
        self.layout = layout or _guess_layout(self.inp["shape"])

    def __call__(self, x_nchw: np.ndarray) -> np.ndarray:
        x = x_nchw.transpose(0, 2, 3, 1) if self.layout == "NHWC" else x_nchw
        outs = []
        for i in range(len(x)):
            self.it.set_tensor(self.inp["index"], quantize(x[i:i + 1], self.inp))
            self.it.invoke()
            outs.append(dequantize(self.it.get_tensor(self.out["index"]), self.out))
        return np.concatenate(outs).astype(np.float32)


def one_run(model, fmt: str, x: np.ndarray):
    """One inference of `model` (an .onnx or .tflite file, or its bytes; `fmt` onnx | tflite) on the first image
    of the NCHW batch `x`, as a zero-argument call to time: onnxruntime on its own input, LiteRT through
    TfliteRunner (its layout and quantization)."""
    x = x[:1]
    if fmt == "onnx":
        sess = ort_session(model)
        feed = {sess.get_inputs()[0].name: x}
        return lambda: sess.run(None, feed)
    run = TfliteRunner(model)
    return lambda: run(x)


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zp = detail["quantization"]
    dtype = np.dtype(detail["dtype"])
    if dtype.kind in "iu" and scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zp), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zp = detail["quantization"]
    if np.dtype(detail["dtype"]).kind in "iu" and scale:
        return (y.astype(np.float32) - zp) * scale
    return y.astype(np.float32)


def torch_logits(model, x, batch: int = 64) -> np.ndarray:
    """The PyTorch reference's outputs for NCHW float images (a torch tensor), in batches."""
    import torch

    with torch.no_grad():
        return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)]).numpy()


def loaded(path, runtime: str, load):
    """`load()`: the runtime's model object; a file the runtime cannot parse is bad input (one line, exit 2)."""
    from .errors import BadInput

    try:
        return load()
    except Exception as e:  # noqa: BLE001 - each runtime raises its own type for a malformed file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise BadInput(f"{path}: {runtime} cannot load it ({first}); give a model written by "
                       "`edgefit export` or the runtime's own converter") from None


def runner(path: Path, threads: int = 0, meta: dict | None = None):
    """The runner of an artifact file, with the input layout its manifest entry records."""
    path = Path(path)
    meta = meta or manifest_entry(path) or {}
    layout = meta.get("input_layout")
    if path.suffix == ".onnx":
        return loaded(path, "onnxruntime", lambda: OnnxRunner(path, threads, layout=layout))
    return loaded(path, "litert", lambda: TfliteRunner(path, threads, layout=layout))


def top1(path: Path, images, meta: dict | None = None) -> float:
    """Top-1 of an artifact on data.images.Images."""
    y = runner(path, meta=meta)(images.x.numpy())
    return float((y.argmax(1) == images.labels).mean())
