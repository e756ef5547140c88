"""From a Split to batches, streamed: images are decoded when a batch needs them, never all up front.

Each image is resized so the shorter side is resolution / crop_pct (the evaluation resize of the variant's
pretrained config). Small sets keep the decoded uint8 tensors once decoded; large ones are decoded again
every epoch by loader workers (optionally from an on-disk cache of resized images, data/cache.py).
Training augmentation (random resized crop, optional horizontal flip, colour jitter) runs on those tensors
seeded by (seed, epoch, image index) alone, so a run is repeatable whatever the number of workers or ranks,
and a resumed run sees the same batches it would have seen.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from ..device.classify import load_rgb, resize_shorter
from .folder import Split

MEMORY_LIMIT_BYTES = 512_000_000  # decoded images a set may keep; larger sets stream (memory flat in their size)


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


WIDE_CROP = (0.5, 1.0)  # random resized crop: from half the image's area to all of it (the default)
MILD_CROP = (0.85, 1.0)  # where the evidence says a wide crop cuts away what tells the classes apart


@dataclass(frozen=True)
class Augment:
    scale: tuple = WIDE_CROP
    ratio: tuple = (3 / 4, 4 / 3)
    flip: bool = True
    jitter: float = 0.3

    @classmethod
    def of(cls, in_force: dict, jitter: float) -> Augment:
        """The augmentation of the transforms in force ({crop, flip, jitter: on}; `jitter`: its strength when on).
        A run from before the crop's decision trained with the wide crop."""
        return cls(scale=WIDE_CROP if in_force.get("crop", True) else MILD_CROP, flip=in_force["flip"],
                   jitter=jitter if in_force["jitter"] else 0.0)

    def to_dict(self) -> dict:
        return {"random_resized_crop_scale": list(self.scale), "ratio": list(self.ratio),
                "hflip": self.flip, "color_jitter": self.jitter}


def _decode(path: Path, pp: Preprocess) -> torch.Tensor:
    """uint8 CHW, the shorter side resized to `pp.resize` with the variant's interpolation: the device scripts'
    own definition (device/classify.py), so a deployed model sees exactly what it was trained on."""
    import numpy as np

    img = np.asarray(resize_shorter(load_rgb(path), pp.resize, pp.interpolation))
    return torch.from_numpy(img.copy()).permute(2, 0, 1).contiguous()


def data_workers(world_size: int = 1) -> int:
    """Loader worker processes for this machine: the CPUs this process may use, shared by the ranks on it,
    less one for the training process itself; at least 1, at most 8."""
    from ..benchmark.machine import usable_cpus

    return max(1, min(8, usable_cpus() // max(1, world_size) - 1))


class ImageSet(Dataset):
    """The images of one split, decoded when first asked for (no up-front pass over the folder).

    A file that cannot be decoded is skipped where it is met (in a loader worker) and recorded in `skipped`
    as its batch arrives; the set's length stays the number of listed files. Sets whose decoded images fit
    `memory_limit` keep them once decoded (served without workers); larger ones stream: every epoch decodes
    again in `workers` loader processes, from `cache` (an ImageCache of resized images) when given, so memory
    stays flat in the size of the set."""

    def __init__(self, split: Split, name: str, pp: Preprocess, augment: Augment | None, keep_in_memory=None,
                 cache=None, memory_limit: int = MEMORY_LIMIT_BYTES, world_size: int = 1):
        self.root = Path(split.root)
        self.pp, self.augment, self.cache = pp, augment, cache
        entries = split.files[name]
        self.paths: list[str] = [rel for rel, _ in entries]
        self.labels: list[int] = [int(label) for _, label in entries]
        self.skipped: dict[str, None] = {}  # unreadable files met so far (ordered; shared by with_augment copies)
        budget = 3 * pp.resize * pp.resize * 1.4 * len(entries)
        self.in_memory = keep_in_memory if keep_in_memory is not None else budget < memory_limit
        self._memory: dict[int, torch.Tensor | None] = {}
        self.workers = 0 if self.in_memory else data_workers(world_size)
        self.aug_seed = 0  # set per epoch by loader()
        # streamed (workers) or under torchrun: a sample's augmentation depends on (seed, epoch, index) only, the
        # same with any number of workers or ranks; a kept set in one process draws from the loop's seeded RNG
        self.per_sample_seeds = not self.in_memory or "WORLD_SIZE" in os.environ

    def __len__(self) -> int:
        return len(self.paths)

    def without_augment(self) -> ImageSet:
        """The same images, served with the evaluation transform."""
        return self.with_augment(None)

    def with_augment(self, augment: Augment | None) -> ImageSet:
        """The same images (and memory of decoded ones), served with another augmentation."""
        import copy

        other = copy.copy(self)
        other.augment = augment
        return other

    def _load(self, i: int) -> torch.Tensor | None:
        path = self.root / self.paths[i]
        if self.cache is not None:
            try:
                img = self.cache.get(path, self.pp.resize, self.pp.interpolation)
            except OSError:  # the source file itself is gone
                return None
            if img is not None:
                return img
        try:
            img = _decode(path, self.pp)
        except Exception:  # noqa: BLE001 - any decoder failure means an unreadable file
            return None
        if self.cache is not None:
            self.cache.put(path, self.pp.resize, self.pp.interpolation, img)
        return img

    def raw(self, i: int) -> torch.Tensor | None:
        """Image i decoded (uint8 CHW, shorter side resized), before crop and augmentation; None if unreadable."""
        if i in self._memory:
            return self._memory[i]
        img = self._load(i)
        if self.in_memory:
            self._memory[i] = img
        if img is None:
            self.skipped[self.paths[i]] = None
        return img

    def __getitem__(self, i: int):
        img = self.raw(i)
        if img is None:
            return Unreadable(self.paths[i])
        if self.augment is None or not self.per_sample_seeds:
            return transform(img, self.pp, self.augment), self.labels[i]
        with torch.random.fork_rng(devices=[]):  # the CPU generator only: torch.manual_seed would also queue a
            torch.default_generator.manual_seed((self.aug_seed * 1_000_003 + i) % (2 ** 63))  # CUDA seed, slowly
            return transform(img, self.pp, self.augment), self.labels[i]


@dataclass(frozen=True)
class Unreadable:
    path: str


def _collate(items: list):
    from torch.utils.data import default_collate

    good = [it for it in items if not isinstance(it, Unreadable)]
    bad = [it.path for it in items if isinstance(it, Unreadable)]
    return (default_collate(good) if good else None), bad


class Batches:
    """A DataLoader's (x, y) batches; unreadable files met in the workers are recorded in the set's `skipped`."""

    def __init__(self, dl: DataLoader, ds: ImageSet):
        self.dl, self.ds = dl, ds

    def __len__(self) -> int:
        return len(self.dl)

    def __iter__(self):
        for batch, bad in self.dl:
            for path in bad:
                self.ds.skipped[path] = None
            if batch is not None:
                yield batch[0], batch[1]


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


def loader(ds: ImageSet, batch_size: int, shuffle: bool, seed: int = 0, epoch: int = 0, sampler=None) -> Batches:
    """Batches in a deterministic order for (seed, epoch); with `sampler` (a DistributedSampler), this rank's
    share of them."""
    g = torch.Generator().manual_seed(seed * 100003 + epoch)
    ds.aug_seed = seed * 100003 + epoch
    workers = ds.workers
    dl = DataLoader(ds, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler, generator=g,
                    num_workers=workers, drop_last=False, collate_fn=_collate, persistent_workers=False,
                    prefetch_factor=2 if workers else None)
    return Batches(dl, ds)
