"""Evidence for augmentation: does a transform keep the label?

A model trained for a few epochs without flips or colour jitter is asked to classify validation images
as they are and flipped / jittered. Where a transform keeps the label (a flipped cat is a cat), accuracy
barely moves; where it changes it (a flipped left arrow is a right arrow), accuracy collapses and the
mistakes go to the mirror class. Only transforms that keep the label are switched on. The random resized crop
is asked the same question the other way round: it trains from the start at the wide scale (WIDE_CROP), and
where the model, trained on such crops, still does much worse on them than on the whole image, a crop cuts
away what tells the classes apart (a crescent cropped to its middle is a bar): the crop is narrowed to
MILD_CROP for the rest of the training. After training,
the same measurement on training images checks the practitioners' rule of thumb: the share of augmented
training images the model gets wrong should not exceed its validation error by much.
"""
from __future__ import annotations

import math

import torch

from ..data.pipeline import MILD_CROP, WIDE_CROP, Augment, augment_image

CHECK_IMAGES = 300
TRAIN_CHECK_IMAGES = 500
OPTIONAL = ("crop", "flip", "jitter")  # decided from evidence
ON_UNTIL_DECIDED = ("crop",)  # the wide crop trains until the evidence is in; flips and jitter wait for it
DONE = {"crop": "cropped", "flip": "flipped", "jitter": "jittered"}


def accuracy_under(model, ds, indices: list[int], kinds: tuple[str, ...], device, seed: int = 0,
                   jitter: float = 0.3, crop_scale: tuple | None = None) -> dict[str, float]:
    """Top-1 of `model` on images `indices` of `ds` (an ImageSet) as fed (centre crop: 'none') and under each
    transform alone ('crop': the random resized crop at `crop_scale`, the wide one by default; 'flip', 'jitter')
    or the whole augmentation ('all'). torch's RNG is untouched."""
    from torchvision.transforms.v2 import functional as F

    pp = ds.pp
    aug = Augment(scale=crop_scale or WIDE_CROP, flip=True, jitter=jitter)
    out = {}
    model.eval()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        pairs = [(i, ds.raw(i)) for i in indices]
        raw = [r for _, r in pairs if r is not None]
        labels = torch.tensor([ds.labels[i] for i, r in pairs if r is not None])
        for kind in kinds:
            if kind == "none":
                imgs = [augment_image(r, pp, None) for r in raw]
            elif kind == "all":
                imgs = [augment_image(r, pp, ds.augment or aug) for r in raw]
            else:
                imgs = [augment_image(r, pp, aug, only=kind) for r in raw]
            x = F.normalize(torch.stack(imgs).float().div_(255), list(pp.mean), list(pp.std))
            preds = torch.cat([model(x[i:i + 128].to(device, memory_format=torch.channels_last)).argmax(1).cpu()
                               for i in range(0, len(x), 128)])
            out[kind] = float((preds == labels).float().mean())
    return out


def in_force(t: str, decision: list | None) -> bool:
    """Whether transform `t` trains now: as decided, or, undecided, on for the crop and off for the others."""
    return t in ON_UNTIL_DECIDED if decision is None else bool(decision[0])


def word(t: str, on: bool) -> str:
    """How a decision reads: the crop is never off, only narrowed."""
    if t == "crop":
        return f"wide (scale {WIDE_CROP[0]:g}-1)" if on else f"narrowed (scale {MILD_CROP[0]:g}-1)"
    return "on" if on else "off"


def sample(n_items: int, k: int, seed: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n_items, generator=g)[:k].tolist())


def decide(acc: dict[str, float], num_classes: int, images: int | None = None) -> dict | None:
    """{transform: (on, why)} from accuracy as fed vs under each optional transform, on `images` validation
    images; None while the model is too weak for the answer to mean anything. Flips and jitter need the evidence
    to go on; the crop, on until then, is narrowed only on a drop beyond what the images can tell apart from
    noise (two standard errors of the difference of two accuracies on `images` images)."""
    chance = 1 / num_classes
    base = acc["none"]
    if base < chance + 0.25 * (1 - chance):
        return None
    tol = max(0.05, 0.25 * (base - chance))
    noise = 2 * math.sqrt(2 * base * (1 - base) / images) if images else 0.0
    out = {}
    for t in OPTIONAL:
        limit = max(tol, noise) if t in ON_UNTIL_DECIDED else tol
        keeps = acc[t] >= base - limit
        why = "the classes survive it" if acc[t] >= base - tol else \
            f"a drop within the noise of {images} images (< {limit:.2f}): kept" if keeps else \
            f"it changes the class (drop > {limit:.2f})"
        out[t] = (keeps, f"validation top-1 {base:.3f} as fed, {acc[t]:.3f} {DONE[t]}: {why}")
    return out
