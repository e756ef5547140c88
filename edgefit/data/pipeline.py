"""From a Split to batches: decode once (skipping unreadable files), then augment on tensors.

Images are decoded once, resized so the shorter side is resolution / crop_pct (the evaluation
resize of the variant's pretrained config) and kept in memory as uint8 tensors when they fit the
memory limit, else decoded again per epoch. Training augmentation (random resized crop, optional
horizontal flip, colour jitter) runs on those tensors with torch's seeded RNG, so a CPU run is
repeatable and a resumed run sees the same batches it would have seen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from .folder import Split, load_rgb

MEMORY_LIMIT_BYTES = 1_500_000_000


@dataclass(frozen=True)
class Preprocess:
    resolution: int
    mean: tuple
    std: tuple
    crop_pct: float = 0.875
    interpolation: str = "bilinear"

    @property
    def resize(self) -> int:
        return int(math.floor(self.resolution / self.crop_pct))

    @classmethod
    def of(cls, model, resolution: int) -> Preprocess:
        """The preprocessing a timm `model` was pretrained with (its pretrained_cfg), at `resolution`."""
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        return cls(resolution=resolution, mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
                   std=tuple(cfg.get("std", (0.229, 0.224, 0.225))), crop_pct=float(cfg.get("crop_pct", 0.875)),
                   interpolation=str(cfg.get("interpolation", "bilinear")))

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        """The inverse of to_dict (as stored in checkpoints and edgefit.json)."""
        return cls(d["resolution"], tuple(d["mean"]), tuple(d["std"]), d["crop_pct"],
                   d.get("interpolation", "bilinear"))

    def to_dict(self) -> dict:
        return {"resolution": self.resolution, "mean": list(self.mean), "std": list(self.std),
                "crop_pct": self.crop_pct, "resize": self.resize, "interpolation": self.interpolation,
                "resize_method": f"resize shorter side to {self.resize} ({self.interpolation}), "
                                 f"center crop {self.resolution}"}


@dataclass(frozen=True)
class Augment:
    scale: tuple = (0.5, 1.0)
    ratio: tuple = (3 / 4, 4 / 3)
    flip: bool = True
    jitter: float = 0.3

    def to_dict(self) -> dict:
        return {"random_resized_crop_scale": list(self.scale), "ratio": list(self.ratio),
                "hflip": self.flip, "color_jitter": self.jitter}


def _decode(path: Path, pp: Preprocess) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as F

    img = F.pil_to_tensor(load_rgb(path))
    return F.resize(img, [pp.resize], antialias=True)


class ImageSet(Dataset):
    """Decoded images of one split; `skipped` lists files that could not be read."""

    def __init__(self, split: Split, name: str, pp: Preprocess, augment: Augment | None, keep_in_memory=None):
        self.root = Path(split.root)
        self.pp, self.augment = pp, augment
        self.items: list = []
        self.labels: list[int] = []
        self.skipped: list[str] = []
        entries = split.files[name]
        budget = 3 * pp.resize * pp.resize * 1.4 * len(entries)
        self.in_memory = keep_in_memory if keep_in_memory is not None else budget < MEMORY_LIMIT_BYTES
        for rel, label in entries:
            try:
                img = _decode(self.root / rel, pp)
            except Exception:  # noqa: BLE001 - any decoder failure means an unreadable file
                self.skipped.append(rel)
                continue
            self.items.append(img if self.in_memory else rel)
            self.labels.append(int(label))

    def __len__(self) -> int:
        return len(self.items)

    def without_augment(self) -> ImageSet:
        """The same decoded images, served with the evaluation transform."""
        return self.with_augment(None)

    def with_augment(self, augment: Augment | None) -> ImageSet:
        """The same decoded images, served with another augmentation."""
        import copy

        other = copy.copy(self)
        other.augment = augment
        return other

    def raw(self, i: int) -> torch.Tensor:
        """Image i decoded (uint8 CHW, shorter side resized), before crop and augmentation."""
        return self.items[i] if self.in_memory else _decode(self.root / self.items[i], self.pp)

    def __getitem__(self, i: int):
        return transform(self.raw(i), self.pp, self.augment), self.labels[i]


def transform(img: torch.Tensor, pp: Preprocess, augment: Augment | None) -> torch.Tensor:
    """uint8 CHW -> normalized float CHW at the variant's resolution."""
    from torchvision.transforms.v2 import functional as F

    x = augment_image(img, pp, augment).float().div_(255)
    return F.normalize(x, list(pp.mean), list(pp.std))


def augment_image(img: torch.Tensor, pp: Preprocess, augment: Augment | None, only: str | None = None) -> torch.Tensor:
    """uint8 CHW -> uint8 CHW at the variant's resolution: the centre crop, or the training augmentation
    (random resized crop, horizontal flip, colour jitter; `only` applies one of crop | flip | jitter alone)."""
    from torchvision.transforms import v2 as T
    from torchvision.transforms.v2 import functional as F

    r = pp.resolution
    if augment is None:
        return F.center_crop(img, [r, r])
    if only in (None, "crop"):
        i, j, h, w = T.RandomResizedCrop.get_params(img, list(augment.scale), list(augment.ratio))
        img = F.resized_crop(img, i, j, h, w, [r, r], antialias=True)
    else:
        img = F.center_crop(img, [r, r])
    if augment.flip and only in (None, "flip") and (only == "flip" or torch.rand(()) < 0.5):
        img = F.horizontal_flip(img)
    if augment.jitter > 0 and only in (None, "jitter"):
        a = augment.jitter
        f = (torch.rand(3) * 2 - 1) * a + 1
        img = F.adjust_brightness(img, float(f[0]))
        img = F.adjust_contrast(img, float(f[1]))
        img = F.adjust_saturation(img, float(f[2]))
    return img


def loader(ds: ImageSet, batch_size: int, shuffle: bool, seed: int = 0, epoch: int = 0) -> DataLoader:
    """Batches in a deterministic order for (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 100003 + epoch)
    workers = 0 if ds.in_memory else min(4, max(1, (torch.get_num_threads() or 1) - 1))
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g, num_workers=workers,
                      drop_last=False)
