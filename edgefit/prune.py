"""Structured channel pruning (torch-pruning, DepGraph): the primitive both training (`train --prune`, a
larger variant made to fit) and the compress stage use. Channels are really removed (depthwise groups, residual
additions and squeeze-excite are coupled; the first convolution and the classifier are protected) and counts stay
multiples of `round_to`."""
from __future__ import annotations

import copy

MAX_CHANNEL_RATIO = 0.9  # beyond it too little of a network is left
ROUND_TO = 8  # channel counts stay multiples of 8: what SIMD kernels and accelerators want


def _pruner(model, resolution: int, ratio: float, steps: int, round_to: int):
    import torch
    import torch_pruning as tp

    x = torch.zeros(1, 3, resolution, resolution)
    ignored = [model.get_classifier()] + ([model.conv_stem] if hasattr(model, "conv_stem") else [])
    return tp.pruner.MetaPruner(model, x, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                pruning_ratio=ratio, ignored_layers=ignored, round_to=round_to,
                                iterative_steps=steps)


def prune_in_place(model, resolution: int, ratio: float, round_to: int = ROUND_TO):
    """Remove `ratio` of the channels of every prunable layer in one step, the lowest-magnitude groups first.
    How many channels go depends on the ratio and the architecture only, not on the weights."""
    if ratio > 0:
        _pruner(model, resolution, ratio, 1, round_to).step()
    return model


def pruned_copy(model, resolution: int, ratio: float, round_to: int):
    return prune_in_place(copy.deepcopy(model).eval(), resolution, ratio, round_to)
