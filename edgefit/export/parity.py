"""What every artifact of an export folder is compared on: the images, the reference network's logits on them, the
tolerances per precision, and the images an int8 artifact was calibrated with. verify.py judges the artifacts on
these; the int8 layer tools (int8_layers.py, tflite_layers.py) and the deploy writers that check parity themselves
read them too."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadInput

if TYPE_CHECKING:
    import numpy as np

# Documented defaults; override with --max-rel-error / --min-agreement.
MIN_PARITY_IMAGES = 200  # a smaller validation split is topped up with training images for the agreement

TOLERANCES = {
    "fp32": {"max_rel_error": 1e-4, "min_agreement": 0.99},
    "fp16": {"max_rel_error": 2e-2, "min_agreement": 0.98},
    "int8": {"max_rel_error": None, "min_agreement": 0.98},
}


@dataclass(frozen=True)
class ParityInputs:
    """What every artifact of an export directory is compared on: the images and the reference logits."""

    manifest: dict
    ck: dict
    model: object  # the PyTorch reference network
    xs: np.ndarray  # preprocessed NCHW float32 images
    labels: np.ndarray
    n_val: int  # the first n_val images are the validation split (accuracy); the rest top up the agreement
    ref: np.ndarray  # the reference network's logits on xs
    images: str  # where the images came from, in words
    source: object  # checkpoint.Source of the reference (its run directory when it is still there)


def parity_inputs(art_dir: Path, data: str | None = None, samples: int = 200) -> ParityInputs:
    import numpy as np
    import torch

    from .. import checkpoint
    from ..data.images import split_images
    from ..runtimes import torch_logits

    manifest_path = art_dir / "edgefit.json"
    if not manifest_path.is_file():
        raise BadInput(f"{art_dir} has no edgefit.json; give a directory written by `edgefit export`")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(f"{manifest_path} is not valid JSON ({e}); export again with `edgefit export`") from None
    ck_path = art_dir / manifest.get("reference_checkpoint", "reference.pt")
    ck = checkpoint.load(ck_path)
    run_dir = manifest["source"].get("run_dir")
    source = checkpoint.Source(ck_path, ck, Path(run_dir) if run_dir and Path(run_dir, "split.json").is_file()
                               else None)
    if samples < 1:
        raise BadInput(f"--samples must be 1 or more, got {samples}")
    val = split_images(source, "val", data, samples)
    x, labels = val.x, torch.from_numpy(val.labels)
    n_val = len(x)
    want = min(samples, MIN_PARITY_IMAGES)
    if n_val < want and data is None and source.run_dir is not None:
        # agreement is a statement about two models on the same inputs: top a small validation split up
        # with training images so that one disagreement is not the difference between pass and fail
        extra = split_images(source, "train", None, want - n_val)
        x, labels = torch.cat([x, extra.x]), torch.cat([labels, torch.from_numpy(extra.labels)])
    model = checkpoint.build_model(ck)
    images = "--data" if data else "validation split of the training run"
    if len(x) > n_val:
        images += f" ({n_val}) + {len(x) - n_val} training images"
    return ParityInputs(manifest, ck, model, x.numpy().astype(np.float32), labels.numpy(), n_val,
                        torch_logits(model, x), images, source)


def calibration_images(p: ParityInputs) -> tuple[np.ndarray, str]:
    """The images an int8 TFLite artifact is requantized with to measure its layers: those export calibrated it
    with when the manifest says so and they are still there, else the parity images (said in the report)."""
    import numpy as np

    from ..data.images import split_images

    cal = p.manifest.get("calibration") or {}
    images = cal.get("images")
    folder = images if images not in (None, "train split", "array") and Path(images).is_dir() else None
    if folder or (images == "train split" and p.source.run_dir is not None):
        x = split_images(p.source, "train", folder, cal["samples"]).x.numpy().astype(np.float32)
        return x, f"as exported ({len(x)} images, {images})"
    return p.xs, f"the {len(p.xs)} parity images (the export's calibration images are not at hand)"
