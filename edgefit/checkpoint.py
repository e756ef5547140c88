"""edgefit checkpoints: a state dict plus the metadata every later stage needs, loaded safely.

A checkpoint is a plain dict of tensors, strings and numbers, so `torch.load(weights_only=True)`
reads it; writes are atomic.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
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


@dataclass
class Source:
    """A trained model to export or evaluate: its checkpoint, and the run directory it came from (for the
    run's split and images), if any."""

    checkpoint_path: Path
    ck: dict
    run_dir: Path | None

    @property
    def classes(self) -> list[str]:
        return self.ck["classes"]

    @property
    def preprocess(self) -> dict:
        return self.ck["preprocess"]

    def model(self):
        return build_model(self.ck)


def open_source(path: str | Path) -> Source:
    """An `edgefit train` run directory (its best.pt) or a checkpoint file."""
    p = Path(path)
    if p.is_dir():
        best = p / "best.pt"
        if not best.is_file():
            raise BadInput(f"{p} has no best.pt; give an `edgefit train` run directory or a checkpoint file")
        return Source(best, load(best), p)
    ck = load(p)
    run_dir = p.parent if (p.parent / "split.json").is_file() else None
    return Source(p, ck, run_dir)


def build_model(ck: dict):
    """Rebuild the network of a checkpoint and load its weights."""
    from . import zoo

    model = zoo.build_model(zoo.get_variant(ck["variant"]), ck["num_classes"])
    if ck.get("arch"):  # a pruned network: resize its layers first
        from .arch import apply

        apply(model, ck["arch"])
    model.load_state_dict(ck["state_dict"])
    return model.eval()
