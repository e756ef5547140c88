"""A latency model fitted on measured kernel samples (kernels.py): gradient-boosted trees (LightGBM) on each
kernel's type and shape, plus a per-network overhead. Stored as LightGBM's own text format inside the
profile's JSON: nothing to unpickle.

Features per kernel (onnxruntime's op after fusion: Conv, Gemm, Mul, ReorderInput, ...; LiteRT's: CONV_2D,
...): the op type (categorical), channels in/out, spatial size in/out, kernel area, groups, stride, MACs,
elements in/out, whether it is depthwise, whether an activation was fused into it; every number as log(1 + x).
Target: log(time). The trees are few and small, with a linear model of the log features in each leaf
(linear_tree): a kernel's time follows a power law of its MACs and bytes within an op type, which a linear leaf
carries past the channel counts of the calibration networks (a pruned network's 0.7 x width falls between
them), where constant leaves gave a step. Held-out networks, fitted on the same probe results of 20 calibration
networks (Xeon, 2 threads): onnxruntime fp32 60% -> 80% within +-10%, LiteRT int8 53% -> 73%
(bench/latency_validation.py --keep, refitted). A network's
prediction is c x the sum of its convolutions' + e x the sum of its other kernels' + a + b x kernels: the
profiler's own cost per kernel inflates profiled times, and differently for a convolution, which runs on every
thread, than for an elementwise op or a layout reorder; scheduling and memory planning between kernels add to
them. The four are fitted on measured network latencies (unprofiled), minimizing the relative error. (One
scale for all kernels left onnxruntime's mobilenet_v4_conv_small over-predicted by 10-14%; two: network
leave-one-out within 10% 94% -> 97% for onnxruntime, 88% -> 90% for LiteRT, on the probe results of
bench/latency_validation.py.)
"""
from __future__ import annotations

import math

import numpy as np

FEATURES = ("op", "cin", "hw_in", "cout", "hw_out", "kernel_area", "groups", "stride", "macs", "elems_in",
            "elems_out", "depthwise", "fused_act")
PARAMS = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 8, "min_data_in_leaf": 5,
          "linear_tree": True, "linear_lambda": 0.1, "verbose": -1, "seed": 0, "deterministic": True,
          "num_threads": 1}
ROUNDS = 200
# the convolutions the zoo's networks compile to (onnxruntime on x86, LiteRT); other convolution ops (onnxruntime's
# Nhwc* forms of other builds, TRANSPOSE_CONV) are not among them: no zoo network yields one here
CONV_OPS = ("Conv", "FusedConv", "QLinearConv", "CONV_2D", "DEPTHWISE_CONV_2D")


def _chw(shape: list[int]) -> tuple[int, int, int]:
    if len(shape) >= 4:
        return shape[1], shape[2], shape[3]
    if len(shape) >= 2:
        return shape[1], 1, 1
    return (shape[0] if shape else 1), 1, 1


def features(k: dict, ops: list[str]) -> list[float]:
    x = k["inputs"][0] if k["inputs"] else []
    w = k["inputs"][1] if len(k["inputs"]) > 1 else []
    cin, hin, win = _chw(x)
    cout, hout, wout = _chw(k["output"])
    area = groups = 1
    if k["op"] in CONV_OPS and len(w) == 4:
        area, groups = w[2] * w[3], max(1, cin // max(w[1], 1))
        macs = cout * hout * wout * w[1] * area
    elif k["op"] in ("Gemm", "MatMul", "FusedGemm", "FULLY_CONNECTED"):
        macs = cin * cout
    else:
        macs = cout * hout * wout
    op = ops.index(k["op"]) if k["op"] in ops else len(ops)  # a type never fitted: its own unseen category
    fused = float(k["fused_act"] if "fused_act" in k else  # LiteRT records it; onnxruntime names it in the node
                  "act" in k["node"] or "Clip" in k["node"] or "Relu" in k["node"])
    numbers = [cin, hin * win, cout, hout * wout, area, groups, hin / max(hout, 1), macs, cin * hin * win,
               cout * hout * wout, float(groups > 1 and groups == cin), fused]
    return [op, *(math.log1p(x) for x in numbers)]


def _booster(model: dict):
    import lightgbm as lgb

    if "_booster" not in model:
        model["_booster"] = lgb.Booster(model_str=model["booster"])
    return model["_booster"]


def kernel_sums_ms(model: dict, kernels: list[dict]) -> tuple[float, float]:
    """The predicted times of a network's convolutions and of its other kernels, summed, in ms."""
    if not kernels:
        return 0.0, 0.0
    X = np.array([features(k, model["ops"]) for k in kernels])
    t = np.exp(_booster(model).predict(X)) / 1000
    conv = np.array([k["op"] in CONV_OPS for k in kernels])
    return float(t[conv].sum()), float(t[~conv].sum())


def fit(networks: list[dict]) -> dict:
    """`networks`: [{"name", "kernels": [kernel, ...], "measured_ms"}] -> the model as a JSON-able dict."""
    import lightgbm as lgb

    ops = sorted({k["op"] for n in networks for k in n["kernels"]})
    X = np.array([features(k, ops) for n in networks for k in n["kernels"]])
    y = np.array([math.log(max(k["us"], 0.5)) for n in networks for k in n["kernels"]])
    data = lgb.Dataset(X, y, feature_name=list(FEATURES), categorical_feature=["op"], free_raw_data=False)
    booster = lgb.train(PARAMS, data, num_boost_round=ROUNDS)
    model = {"ops": ops, "features": list(FEATURES), "booster": booster.model_to_string(), "_booster": booster}
    # measured = c x conv sum + e x other sum + a + b x kernels, in relative error (each row divided by its
    # measured latency), so a 0.3 ms network counts as much as a 30 ms one
    m = np.array([n["measured_ms"] for n in networks])
    A = np.array([[*kernel_sums_ms(model, n["kernels"]), 1.0, len(n["kernels"])] for n in networks])
    conv, other, a, b = np.linalg.lstsq(A / m[:, None], np.ones(len(m)), rcond=None)[0]
    model["network"] = {"scale_conv": float(conv), "scale_other": float(other), "a_ms": float(a),
                        "b_ms_per_kernel": float(b)}
    return model


def predict_ms(model: dict, kernels: list[dict]) -> float:
    o = model["network"]
    conv, other = kernel_sums_ms(model, kernels)
    return o["scale_conv"] * conv + o["scale_other"] * other + o["a_ms"] + o["b_ms_per_kernel"] * len(kernels)


def stored(model: dict) -> dict:
    """The JSON-able part of a fitted model."""
    return {k: v for k, v in model.items() if not k.startswith("_")}
