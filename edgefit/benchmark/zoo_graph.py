"""The deployed graph of a network as export writes it (ONNX or TFLite bytes at a precision), for timing and kernel
listing: calibration networks, the probe's calibration set, zoo kernel lists. A zoo variant's graph (untrained,
seeded, optionally pruned) is the same bytes every time for the same libraries, so it is kept in edgefit's cache
folder (`graphs/`, keyed by the converter versions): LiteRT's conversion through onnx2tf takes 3-10 s a network.
"""
from __future__ import annotations

from pathlib import Path

from .. import __version__
from ..fsutil import atomic_write_bytes
from ..paths import cache_dir, lib_version

CALIB_NOISE = 8  # Gaussian calibration inputs for an int8 graph (the graph, not its scales, sets the time)


def noise(shape):
    """Seeded Gaussian float32 input of `shape`: the graph, not the values, sets a kernel's time."""
    import numpy as np

    return np.random.default_rng(0).standard_normal(tuple(shape)).astype(np.float32)


def network_onnx(model, resolution: int, precision: str) -> bytes:
    """The ONNX graph edgefit exports for `model` at `precision` (int8: the QDQ graph, noise-calibrated)."""
    import tempfile

    from ..export.deploy_form import deploy_form
    from ..export.onnx_export import quantize_int8, to_onnx_bytes

    blob = to_onnx_bytes(deploy_form(model), resolution, {})
    if precision == "fp32":
        return blob
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "m.onnx", Path(tmp) / "q.onnx"
        src.write_bytes(blob)
        calib = noise((CALIB_NOISE, 3, resolution, resolution))
        quantize_int8(src, out, calib, {})
        return out.read_bytes()


def network_tflite(model, resolution: int, precision: str) -> bytes:
    """The TFLite model edgefit exports for `model` at `precision` (int8: the LiteRT int8 form, noise-calibrated,
    float input and output)."""
    import tempfile

    from ..export.deploy_form import deploy_form
    from ..export.onnx_export import to_onnx_bytes
    from ..export.tflite_export import convert

    form = deploy_form(model, "litert" if precision == "int8" else None)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "model.onnx"
        src.write_bytes(to_onnx_bytes(form, resolution, {}))
        return convert(src, [precision], noise((CALIB_NOISE, 3, resolution, resolution)), "float")[precision]


def network(model, resolution: int, precision: str, runtime: str) -> bytes:
    """The deployed network (ONNX or TFLite bytes) of a torch model for `runtime` at `precision`."""
    return (network_tflite if runtime == "litert" else network_onnx)(model.eval(), resolution, precision)


def variant_graph(v, num_classes: int, precision: str, runtime: str = "onnxruntime", prune: float = 0.0) -> bytes:
    """The deployed graph of zoo variant `v`, untrained (seeded), as export writes it at `precision` for
    `runtime`; `prune`: that share of its channels removed first."""
    import torch

    from .. import zoo
    from ..prune import prune_in_place

    path = _cached(v.name + (f".pruned{prune:g}" if prune else ""), num_classes, precision, runtime)
    if path.is_file():
        return path.read_bytes()
    torch.manual_seed(0)
    model = zoo.build_model(v, num_classes).eval()
    blob = network(prune_in_place(model, v.resolution, prune), v.resolution, precision, runtime)
    try:
        atomic_write_bytes(path, blob)
    except OSError:
        pass  # a read-only cache is slower, not wrong
    return blob


# what makes the bytes: edgefit's own export code (hashed), the zoo's catalog, and the libraries on the way
CODE = ("benchmark/zoo_graph.py", "export/deploy_form.py", "export/onnx_export.py", "export/tflite_export.py",
        "prune.py", "zoo.py")
LIBRARIES = {"onnxruntime": ("torch", "timm", "onnx", "onnxslim", "onnxruntime"),
             "litert": ("torch", "timm", "onnx", "onnxslim", "onnxruntime", "tensorflow", "onnx2tf",
                        "onnx_graphsurgeon", "sng4onnx")}


def _cached(name: str, num_classes: int, precision: str, runtime: str) -> Path:
    """Where the graph of zoo network `name` is kept: a folder per everything that makes its bytes."""
    import hashlib

    from .. import zoo

    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256("|".join([__version__, zoo.catalog_digest(), *(f"{lib}={lib_version(lib)}" for lib in
                                                                       LIBRARIES[runtime])]).encode())
    for rel in CODE:
        h.update((root / rel).read_bytes())
    ext = "tflite" if runtime == "litert" else "onnx"
    return cache_dir() / "graphs" / f"{runtime}-{precision}-{num_classes}c-{h.hexdigest()[:20]}" / f"{name}.{ext}"
