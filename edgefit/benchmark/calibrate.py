"""`edgefit calibrate`: effective FLOP/s of this machine, per runtime and per op class.

Times reference networks of known MACs (zoo variants, MACs from the cost model) and single-op
networks of each class the cost model counts (standard, depthwise and pointwise convolution, dense),
then reports 2 x MACs / p50 latency. Run it on the target device to fill a budget's `flops_per_sec`
(and `op_flops_per_sec`, which the cost model uses for per-class latency when present).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from ..errors import BadInput
from ..timing import measure
from ..vocabulary import CALIBRATED_RUNTIMES as CAL_RUNTIMES

REFERENCE_NETWORKS = ("mobilenet_v1_0.5_160", "mobilenet_v2_1.0_224", "mobilenet_v3_large_1.0_224")


def _op_nets():
    from torch import nn

    return {
        "standard": (nn.Conv2d(32, 32, 3, padding=1), (1, 32, 56, 56), 56 * 56 * 32 * 32 * 9),
        "depthwise": (nn.Conv2d(128, 128, 3, padding=1, groups=128), (1, 128, 56, 56), 56 * 56 * 128 * 9),
        "pointwise": (nn.Conv2d(64, 128, 1), (1, 64, 56, 56), 56 * 56 * 64 * 128),
        "dense": (nn.Linear(1280, 1000), (1, 1280), 1280 * 1000),
    }


def _timer(runtime: str, model, shape, tmp: Path, name: str, threads: int):
    """A zero-argument callable running `model` once on `runtime`."""
    import numpy as np
    import torch

    model = model.eval()
    x = torch.randn(*shape)
    if runtime == "torch":
        if threads:
            torch.set_num_threads(threads)

        def run():
            with torch.inference_mode():
                model(x)

        return run
    onnx_path = tmp / f"{name}.onnx"
    torch.onnx.export(model, (x,), str(onnx_path), dynamo=False, opset_version=17, input_names=["input"])
    xn = x.numpy().astype(np.float32)
    if runtime == "onnxruntime":
        from ..runtimes import ort_session

        sess = ort_session(onnx_path, threads)
        feed = {"input": xn}
        return lambda: sess.run(None, feed)
    from ..export.tflite_export import convert
    from ..runtimes import TfliteRunner

    if xn.ndim != 4:
        return None  # onnx2tf's NHWC conversion is for image inputs; dense is timed on the other runtimes
    tfl = TfliteRunner(convert(onnx_path, ["fp32"], xn, "float")["fp32"], threads, layout="NHWC")  # onnx2tf: NHWC
    return lambda: tfl(xn)


def calibrate(runtimes=("onnxruntime",), threads: int = 0, min_seconds: float = 1.0) -> dict:
    import torch

    from .. import zoo
    from ..trace import measure as measure_net
    from . import machine

    for r in runtimes:
        if r not in CAL_RUNTIMES:
            raise BadInput(f"--runtime: unknown '{r}'; choose from {', '.join(CAL_RUNTIMES)}")
    out = {"machine": machine.info(), "date": time.strftime("%Y-%m-%d"), "threads": threads or None, "runtimes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nets = []
        for name in REFERENCE_NETWORKS:
            torch.manual_seed(0)
            v = zoo.get_variant(name)
            model = zoo.build_model(v, 1000).eval()
            nets.append((name, model, (1, 3, v.resolution, v.resolution), measure_net(model, v.resolution).macs))
        for runtime in runtimes:
            res = {"networks": {}, "op_flops_per_sec": {}}
            for name, model, shape, macs in nets:
                fn = _timer(runtime, model, shape, tmp, name, threads)
                p50 = measure(fn, min_seconds=min_seconds)["p50_ms"] / 1000
                res["networks"][name] = {"macs": macs, "p50_ms": round(p50 * 1000, 3),
                                         "flops_per_sec": 2 * macs / p50}
            for cls, (model, shape, macs) in _op_nets().items():
                fn = _timer(runtime, model, shape, tmp, f"op_{cls}", threads)
                if fn is None:
                    continue
                p50 = measure(fn, min_seconds=min_seconds)["p50_ms"] / 1000
                res["op_flops_per_sec"][cls] = 2 * macs / p50
            res["flops_per_sec"] = statistics.median(n["flops_per_sec"] for n in res["networks"].values())
            out["runtimes"][runtime] = res
    return out


def snippet(report: dict, runtime: str) -> str:
    r = report["runtimes"][runtime]
    m = report["machine"]
    lines = [f"# measured by `edgefit calibrate` on {m['cpu']} ({m['cores']} cores), {runtime} fp32, "
             f"threads {report['threads'] or 'default'}, {report['date']}",
             f"# median over {', '.join(r['networks'])}",
             f"flops_per_sec: {r['flops_per_sec']:.4g}"]
    if r["op_flops_per_sec"]:
        lines.append("op_flops_per_sec:")
        lines += [f"  {k}: {v:.4g}" for k, v in r["op_flops_per_sec"].items()]
    return "\n".join(lines) + "\n"
