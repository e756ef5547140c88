"""Latency measurement of one unit on one device, with the model's own input shape and dtype."""
from __future__ import annotations

import resource

import numpy as np

from ..errors import BadInput
from ..timing import measure


def _input_for(shape, dtype, batch: int, rng) -> np.ndarray:
    def fixed(d) -> int:
        try:
            return int(d) if int(d) > 0 else 1
        except (TypeError, ValueError):  # symbolic dimension, e.g. 'batch'
            return 1

    dims = [batch if i == 0 else fixed(d) for i, d in enumerate(shape)]
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=dims).astype(dtype)
    return rng.standard_normal(dims).astype(dtype)


def onnxruntime_fn(unit, device: str, threads: int, batch: int, data: np.ndarray | None):
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cuda":
        wanted = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
        if not wanted:
            return None, f"onnxruntime has no CUDA provider here (available: {', '.join(available)})"
        providers = wanted + ["CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    from ..runtimes import ort_session

    sess = _open(unit, lambda: ort_session(unit.path, threads, providers))
    inp = sess.get_inputs()[0]
    dtype = {"tensor(float)": np.float32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}.get(inp.type, np.float32)
    x = data if data is not None else _input_for(inp.shape, dtype, batch, np.random.default_rng(0))
    feed = {inp.name: x}
    return (lambda: sess.run(None, feed)), {"provider": sess.get_providers()[0], "input_shape": list(x.shape),
                                           "input_dtype": np.dtype(x.dtype).name}


def _open(unit, load):
    """The runtime's model object; a file the runtime cannot parse is bad input (one line, exit 2)."""
    try:
        return load()
    except Exception as e:  # noqa: BLE001 - each runtime raises its own type for a malformed file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise BadInput(f"{unit.path}: {unit.runtime} cannot load it ({first}); give a model written by "
                       "`edgefit export` or the runtime's own converter") from None


def litert_fn(unit, device: str, threads: int, batch: int, data: np.ndarray | None):
    if device == "cuda":
        return None, "LiteRT's GPU delegate targets mobile GPUs (OpenCL/Metal); there is no CUDA path"
    from ai_edge_litert.interpreter import Interpreter

    from ..runtimes import quantize

    it = _open(unit, lambda: Interpreter(model_path=str(unit.path), num_threads=threads or None))
    inp = it.get_input_details()[0]
    shape = list(inp["shape"])
    if batch != shape[0]:
        it.resize_tensor_input(inp["index"], [batch] + shape[1:])
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    if data is not None:
        x = quantize(data, inp)
    else:
        x = _input_for(inp["shape"], inp["dtype"], batch, np.random.default_rng(0))

    def run():
        it.set_tensor(inp["index"], x)
        it.invoke()

    return run, {"provider": "XNNPACK (CPU)", "input_shape": [int(s) for s in x.shape],
                 "input_dtype": np.dtype(x.dtype).name}


def torch_fn(unit, device: str, threads: int, batch: int, data: np.ndarray | None):
    import torch

    from .. import checkpoint

    if device == "cuda" and not torch.cuda.is_available():
        return None, "torch sees no CUDA device"
    if threads:
        torch.set_num_threads(threads)
    ck = checkpoint.load(unit.path)
    model = checkpoint.build_model(ck).to(device)
    res = ck["preprocess"]["resolution"]
    if data is not None:
        x = torch.from_numpy(data)
    else:
        x = torch.randn(batch, 3, res, res, generator=torch.Generator().manual_seed(0))
    x = x.to(device)

    def run():
        with torch.inference_mode():
            model(x)
        if device == "cuda":
            torch.cuda.synchronize()

    return run, {"provider": f"torch eager ({device})", "input_shape": list(x.shape), "input_dtype": "float32"}


FN = {"onnxruntime": onnxruntime_fn, "litert": litert_fn, "torch": torch_fn}


def bench_unit(unit, device: str, threads: int, batch: int, data=None, min_runs=20, min_seconds=1.0) -> dict:
    """One result row; a device that is not available gives a row with `skipped` and the reason."""
    row = {"model": unit.label or unit.path.name, "path": str(unit.path), "runtime": unit.runtime, "device": device,
           "threads": threads or None, "batch": batch, "size_bytes": unit.size_bytes,
           "format": (unit.meta or {}).get("format", unit.path.suffix.lstrip(".")),
           "precision": (unit.meta or {}).get("precision")}
    slow = (unit.meta or {}).get("undelegated_ops", (unit.meta or {}).get("float_islands"))
    if slow is not None:  # recorded by `edgefit export`: what runs outside the runtime's fast path
        row["outside_fast_path"] = slow
    fn, info = FN[unit.runtime](unit, device, threads, batch, data)
    if fn is None:
        return {**row, "skipped": info}
    stats = measure(fn, min_runs=min_runs, min_seconds=min_seconds)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {**row, **info, **{k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()},
            "fps": round(1000 * batch / stats["p50_ms"], 2), "peak_rss_mb": round(peak_kb / 1024, 1)}
