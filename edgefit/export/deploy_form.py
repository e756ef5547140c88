"""The network as it is exported: the same function, written with ops the target runtime runs fast.

- timm's MobileNetV3 gates its squeeze-excite blocks with `nn.Hardsigmoid`; onnx2tf turns that into TFLite's
  RELU_0_TO_1, for which TensorFlow Lite Micro has no kernel (the model does not start on a microcontroller).
  Written as relu6(x + 3) / 6 (the definition of hard-sigmoid) it exports as ADD, RELU6, MUL, which every
  TFLite runtime runs. Always applied.
- `nn.Hardswish` becomes one int8 HARD_SWISH op in TFLite, which XNNPACK (LiteRT's CPU delegate) does not
  take: each one splits the delegated graph and runs on TFLite's own kernels, scalar on x86. MobileNetV3-small
  224 int8 measured 4.2 ms with 19 HARD_SWISH outside XNNPACK vs 0.86 ms written as (x / 6) * relu6(x + 3)
  (MUL, ADD+RELU6, MUL: all delegated; the converter folds only the x * relu6(x + 3) / 6 orderings back into
  HARD_SWISH). Applied to the int8 graph for LiteRT; not for TensorFlow Lite Micro (its HARD_SWISH kernel
  keeps one tensor fewer alive: v3_small_1.0_96's arena is 15% smaller) nor for float graphs (XNNPACK fuses
  float hard-swish).
The values are the same function (tests/test_tflm.py and tests/test_export.py check it).
"""
from __future__ import annotations

import torch
from torch import nn

# What the int8 graph is shaped for: LiteRT on a CPU (XNNPACK), or TensorFlow Lite Micro.


class HardSigmoidAsRelu6(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.relu6(x + 3.0) * (1.0 / 6.0)


class HardSwishForXnnpack(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * (1.0 / 6.0)) * nn.functional.relu6(x + 3.0)


def _swap(model: nn.Module, swaps: dict) -> nn.Module:
    """Replace, in place, every submodule that is an instance of a key of `swaps` by a new value-class."""
    for name, child in list(model.named_children()):
        new = next((cls for kind, cls in swaps.items() if isinstance(child, kind)), None)
        if new is not None:
            setattr(model, name, new())
        else:
            _swap(child, swaps)
    return model


def deploy_form(model: nn.Module, int8_for: str | None = None) -> nn.Module:
    """`model` with every nn.Hardsigmoid replaced in place and, for an int8 LiteRT graph (`int8_for="litert"`),
    every nn.Hardswish too (returns the same object)."""
    swaps = {nn.Hardsigmoid: HardSigmoidAsRelu6}
    if int8_for == "litert":
        swaps[nn.Hardswish] = HardSwishForXnnpack
    return _swap(model, swaps)


def split_hard_swish(model: nn.Module) -> nn.Module:
    """`model` with only nn.Hardswish written as the LiteRT int8 graph writes it (in place)."""
    return _swap(model, {nn.Hardswish: HardSwishForXnnpack})


def int8_form_differs(model: nn.Module, int8_for: str) -> bool:
    """Whether the int8 graph for `int8_for` is written differently from the float graph."""
    return int8_for == "litert" and any(isinstance(m, nn.Hardswish) for m in model.modules())
