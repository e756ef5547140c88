"""Architecture description of a pruned network: the channel counts of every conv, norm and linear
layer, so a checkpoint reloads into the zoo network without the pruning library."""
from __future__ import annotations

import torch
from torch import nn


def describe(model: nn.Module) -> dict:
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            out[name] = {"type": "conv", "in": m.in_channels, "out": m.out_channels, "groups": m.groups}
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            out[name] = {"type": "bn", "features": m.num_features}
        elif isinstance(m, nn.Linear):
            out[name] = {"type": "linear", "in": m.in_features, "out": m.out_features}
    return out


def apply(model: nn.Module, arch: dict) -> nn.Module:
    """Resize the layers of a freshly built zoo network to `arch` (values are loaded afterwards)."""
    modules = dict(model.named_modules())
    for name, a in arch.items():
        m = modules.get(name)
        if m is None:
            raise ValueError(f"architecture names a layer the network lacks: {name}")
        if a["type"] == "conv":
            m.in_channels, m.out_channels, m.groups = a["in"], a["out"], a["groups"]
            kh, kw = m.kernel_size
            m.weight = nn.Parameter(torch.empty(a["out"], a["in"] // a["groups"], kh, kw))
            if m.bias is not None:
                m.bias = nn.Parameter(torch.empty(a["out"]))
        elif a["type"] == "bn":
            n = a["features"]
            m.num_features = n
            if m.affine:
                m.weight, m.bias = nn.Parameter(torch.empty(n)), nn.Parameter(torch.empty(n))
            if m.track_running_stats:
                m.running_mean, m.running_var = torch.zeros(n), torch.ones(n)
        elif a["type"] == "linear":
            m.in_features, m.out_features = a["in"], a["out"]
            m.weight = nn.Parameter(torch.empty(a["out"], a["in"]))
            if m.bias is not None:
                m.bias = nn.Parameter(torch.empty(a["out"]))
    return model
