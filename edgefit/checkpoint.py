"""edgefit checkpoints: a state dict plus the metadata every later stage needs, loaded safely.

A checkpoint is a plain dict of tensors, strings and numbers, so `torch.load(weights_only=True)`
reads it; writes are atomic.
"""
from __future__ import annotations

import io
from pathlib import Path

from . import __version__
from .errors import BadInput
from .fsutil import atomic_write_bytes

FORMAT = "edgefit-checkpoint"


def save(path: str | Path, obj: dict) -> Path:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def model_checkpoint(model, variant: str, classes: list[str], preprocess: dict, weights: dict, extra=None) -> dict:
    return {"format": FORMAT, "format_version": 1, "edgefit_version": __version__, "variant": variant,
            "classes": list(classes), "num_classes": len(classes), "preprocess": preprocess, "weights": weights,
            "state_dict": plain_state_dict(model), **(extra or {})}


def plain_state_dict(model) -> dict:
    """The weights a checkpoint stores: the plain network's, also while it trains with fake quantization
    (compress/qat.py's QatModel gives them through `float_state_dict`)."""
    get = getattr(model, "float_state_dict", None)
    return get() if get is not None else {k: v.detach().cpu() for k, v in model.state_dict().items()}


def load(path: str | Path) -> dict:
    import torch

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"checkpoint not found: {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise BadInput(f"{path}: not a readable checkpoint ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise BadInput(f"{path}: not an edgefit checkpoint (expected the best.pt of an `edgefit train` run)")
    return ck


def build_model(ck: dict):
    """Rebuild the network of a checkpoint and load its weights."""
    from . import zoo

    model = zoo.build_model(zoo.get_variant(ck["variant"]), ck["num_classes"])
    if ck.get("arch"):  # a pruned network: resize its layers first
        from .compress.arch import apply

        apply(model, ck["arch"])
    model.load_state_dict(ck["state_dict"])
    return model.eval()
