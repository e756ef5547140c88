"""Latency measurement of one unit on one device, with the model's own input shape and dtype."""
from __future__ import annotations

import numpy as np

from ..errors import BadInput
from ..timing import measure


def _dim(d) -> int | None:
    """A model input dimension as a positive int, or None when it is dynamic (a name, -1, 0 or missing)."""
    try:
        return int(d) if int(d) > 0 else None
    except (TypeError, ValueError):
        return None


def input_shape(unit, name: str, dims: list, batch: int, given: tuple[int, ...] | None) -> tuple[list[int], str]:
    """The shape to time and where it came from. Dynamic dimensions come from `given` (--input-shape), else
    from the artifact's shape in edgefit.json; a dynamic batch alone defaults to `batch`. Any other dynamic
    dimension without a shape is bad input: a made-up shape is never timed. An input with no dynamic dimension
    but the batch keeps its own shape (the row says so: `input_shape_from` "model")."""
    model = [_dim(d) for d in dims]
    shown = "[" + ", ".join("?" if d is None else str(d) for d in model) + "]"
    if given is not None and any(d is None for d in model[1:]):  # it is for inputs with dynamic dimensions
        if len(given) != len(model) or any(m is not None and m != g for m, g in zip(model[1:], given[1:], strict=True)):
            raise BadInput(f"{unit.path}: --input-shape {','.join(map(str, given))} does not fit input '{name}' "
                           f"{shown}; give {len(model)} dimensions that keep the fixed ones")
        if batch != 1 and given[0] != batch:
            raise BadInput(f"--batch {batch} and --input-shape batch {given[0]} disagree; give the batch once")
        return list(given), "--input-shape"
    recorded = [_dim(d) for d in (((unit.meta or {}).get("input") or {}).get("shape") or [])]
    how = "model"
    if len(recorded) == len(model) and any(m is None and r for m, r in zip(model[1:], recorded[1:], strict=True)):
        model = [m if m is not None or i == 0 else r for i, (m, r) in enumerate(zip(model, recorded, strict=True))]
        how = "edgefit.json"
    if any(d is None for d in model[1:]):
        raise BadInput(f"{unit.path}: input '{name}' has dynamic dimensions {shown}; give the shape to time with "
                       f"--input-shape (e.g. {','.join(str(d or 224) if i else '1' for i, d in enumerate(model))})")
    return [batch, *model[1:]] if model else [], how


def _input_for(dims: list[int], dtype, rng) -> np.ndarray:
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=dims).astype(dtype)
    return rng.standard_normal(dims).astype(dtype)


def onnxruntime_fn(unit, device: str, threads: int, batch: int, data: np.ndarray | None, shape=None):
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
    how = "--data"
    if data is None:
        dims, how = input_shape(unit, inp.name, list(inp.shape), batch, shape)
        data = _input_for(dims, dtype, np.random.default_rng(0))
    feed = {inp.name: data}
    return (lambda: sess.run(None, feed)), {"provider": sess.get_providers()[0], "input_shape": list(data.shape),
                                           "input_shape_from": how, "input_dtype": np.dtype(data.dtype).name}


def _open(unit, load):
    from ..runtimes import loaded

    return loaded(unit.path, unit.runtime, load)


def litert_fn(unit, device: str, threads: int, batch: int, data: np.ndarray | None, shape=None):
    if device == "cuda":
        return None, "LiteRT's GPU delegate targets mobile GPUs (OpenCL/Metal); there is no CUDA path"
    from ai_edge_litert.interpreter import Interpreter

    from ..runtimes import quantize

    it = _open(unit, lambda: Interpreter(model_path=str(unit.path), num_threads=threads or None))
    inp = it.get_input_details()[0]
    how = "--data"
    dims = list(data.shape) if data is not None else None
    if dims is None:
        signature = inp.get("shape_signature", inp["shape"])
        dims, how = input_shape(unit, inp["name"], [int(d) for d in signature], batch, shape)
    if list(inp["shape"]) != dims:
        it.resize_tensor_input(inp["index"], dims)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    x = quantize(data, inp) if data is not None else _input_for(dims, inp["dtype"], np.random.default_rng(0))

    def run():
        it.set_tensor(inp["index"], x)
        it.invoke()

    return run, {"provider": "XNNPACK (CPU)", "input_shape": [int(s) for s in x.shape], "input_shape_from": how,
                 "input_dtype": np.dtype(x.dtype).name}


def torch_fn(unit, device: str, threads: int, batch: int, data: np.ndarray | None, shape=None):
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
        dims, _ = input_shape(unit, "input", [None, 3, res, res], batch, shape)
        x = torch.randn(*dims, generator=torch.Generator().manual_seed(0))
    x = x.to(device)

    def run():
        with torch.inference_mode():
            model(x)
        if device == "cuda":
            torch.cuda.synchronize()

    return run, {"provider": f"torch eager ({device})", "input_shape": list(x.shape),
                 "input_shape_from": "checkpoint" if data is None and shape is None else "--input-shape",
                 "input_dtype": "float32"}


FN = {"onnxruntime": onnxruntime_fn, "litert": litert_fn, "torch": torch_fn}


def bench_unit(unit, device: str, opts, data=None) -> dict:
    """One result row (`opts`: BenchOptions); a device that is not available gives a row with `skipped` and the
    reason."""
    row = {"model": unit.label or unit.path.name, "path": str(unit.path), "runtime": unit.runtime, "device": device,
           "threads": opts.threads or None, "batch": opts.batch, "size_bytes": unit.size_bytes,
           "format": (unit.meta or {}).get("format", unit.path.suffix.lstrip(".")),
           "precision": (unit.meta or {}).get("precision")}
    slow = (unit.meta or {}).get("undelegated_ops", (unit.meta or {}).get("float_islands"))
    if slow is not None:  # recorded by `edgefit export`: what runs outside the runtime's fast path
        row["outside_fast_path"] = slow
    fn, info = FN[unit.runtime](unit, device, opts.threads, opts.batch, data, opts.input_shape)
    if fn is None:
        return {**row, "skipped": info}
    stats = measure(fn, min_runs=opts.min_runs, min_seconds=opts.min_seconds)
    batch = info["input_shape"][0] if info.get("input_shape") else opts.batch
    return {**row, **info, "batch": batch, **{k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()},
            "fps": round(1000 * batch / stats["p50_ms"], 2)}
