"""Which parts of a zoo network train in each strategy; frozen batch norms stay in eval mode."""
from __future__ import annotations

from torch import nn

PARTIAL_STAGES = 2  # `partial` fine-tunes the last this-many stages of `blocks` and the head


def head_modules(model: nn.Module) -> list[nn.Module]:
    """The classifier and everything after the feature stages (conv_head, norms, pooling)."""
    children = list(model.named_children())
    names = [n for n, _ in children]
    if "blocks" in names:
        return [m for n, m in children[names.index("blocks") + 1:]]
    return [model.get_classifier()]


def classifier(model: nn.Module) -> nn.Module:
    return model.get_classifier()


def set_trainable(model: nn.Module, part: str) -> list[nn.Parameter]:
    """part: 'classifier' | 'head' | 'partial' | 'full'. Returns the trainable parameters."""
    for p in model.parameters():
        p.requires_grad_(part == "full")
    if part != "full":
        mods = [classifier(model)] if part == "classifier" else head_modules(model)
        if part == "partial" and hasattr(model, "blocks"):
            mods += list(model.blocks)[-PARTIAL_STAGES:]
        for m in mods:
            for p in m.parameters():
                p.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def train_mode(model: nn.Module) -> None:
    """model.train(), but batch norms whose parameters are all frozen keep their running statistics."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters())
            if params and not any(p.requires_grad for p in params):
                m.eval()
