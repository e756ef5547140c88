"""The network as it is exported: the same function, written with ops every target runtime has.

timm's MobileNetV3 gates its squeeze-excite blocks with `nn.Hardsigmoid`; onnx2tf turns that into TFLite's
RELU_0_TO_1, for which TensorFlow Lite Micro has no kernel (the model does not start on a microcontroller).
Written as relu6(x + 3) / 6 (the definition of hard-sigmoid) it exports as ADD, RELU6, MUL, which every
TFLite runtime runs; the values are the same (bench/ram_truth.py and tests/test_tflm.py check it).
"""
from __future__ import annotations

import torch
from torch import nn


class HardSigmoidAsRelu6(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.relu6(x + 3.0) * (1.0 / 6.0)


def deploy_form(model: nn.Module) -> nn.Module:
    """`model` with every nn.Hardsigmoid replaced in place (returns the same object)."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Hardsigmoid):
            setattr(model, name, HardSigmoidAsRelu6())
        else:
            deploy_form(child)
    return model
