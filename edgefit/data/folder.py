"""Image folders: scan `root/<class>/<image>` (or pre-split `train/`, `val/`, `test/`), split, load.

The split is stratified and reproducible by seed, stored as JSON in the run directory so that later
stages and reruns use exactly the same images. Unreadable or truncated images are skipped and
counted, never a crash mid-epoch.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..device.classify import load_rgb  # noqa: F401 - the one decoder, re-exported
from ..errors import BadInput

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
SPLITS = ("train", "val", "test")
_VAL_DIRS = ("val", "valid", "validation")
EXIF_ORIENTATION = 274


@dataclass
class Split:
    root: str
    classes: list[str]
    files: dict[str, list[list]]  # split -> [[relative path, label], ...]
    mode: str  # "presplit" | "auto"
    seed: int
    val_fraction: float
    test_fraction: float
    skipped: dict[str, list[str]] = field(default_factory=dict)  # split -> unreadable files
    problems: dict[str, str] = field(default_factory=dict)  # class -> why it cannot be split (lenient scans)

    def counts(self) -> dict[str, int]:
        return {s: len(v) for s, v in self.files.items()}

    def digest(self) -> str:
        blob = json.dumps({"classes": self.classes, "files": self.files}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Split:
        return cls(**d)

    def images_per_class(self) -> float:
        return len(self.files["train"]) / max(1, len(self.classes))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _check_classes(folder: Path, dirs: list[Path]) -> None:
    if not dirs:
        if _images_in(folder):
            raise BadInput(f"{folder} holds images but no class folders; expected {folder}/<class>/<image>")
        raise BadInput(f"no images in {folder}; expected one folder per class: {folder}/<class>/<image>")
    if len(dirs) < 2:
        raise BadInput(f"{folder} has only one class folder ({dirs[0].name}); classification needs 2 or more")


def scan(root: str | Path, seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.0,
         lenient: bool = False) -> Split:
    """Scan an image folder and split it (or read its pre-made split). A class that cannot be split is
    bad input, or with `lenient` (`edgefit doctor`) recorded in `problems` with all its images in train."""
    root = Path(root)
    if not root.exists():
        raise BadInput(f"data folder not found: {root}")
    if not root.is_dir():
        raise BadInput(f"{root} is a file; --data takes a folder with one sub-folder per class")
    if not (0 < val_fraction < 1) or not (0 <= test_fraction < 1) or val_fraction + test_fraction >= 1:
        raise BadInput("--val-fraction must be in (0, 1) and --test-fraction in [0, 1), together below 1")
    train_dir = root / "train"
    val_dir = next((root / d for d in _VAL_DIRS if (root / d).is_dir()), None)
    if train_dir.is_dir() and val_dir is not None:
        return _presplit(root, train_dir, val_dir, seed, lenient)
    if train_dir.is_dir():
        raise BadInput(f"{root} has train/ but no val/; add {root}/val/<class>/... or pass the folder of "
                       "class folders to split automatically")
    dirs = _class_dirs(root)
    _check_classes(root, dirs)
    classes = [d.name for d in dirs]
    files: dict[str, list[list]] = {s: [] for s in SPLITS}
    problems: dict[str, str] = {}
    for label, d in enumerate(dirs):
        imgs = [str(p.relative_to(root)) for p in _images_in(d)]
        n_val = max(1, round(len(imgs) * val_fraction))
        n_test = max(1, round(len(imgs) * test_fraction)) if test_fraction > 0 else 0
        need = n_val + n_test + 1
        problem = None
        if not imgs:
            problem = f"class folder {d} has no images ({', '.join(sorted(IMAGE_EXTS))})"
        elif len(imgs) < need:
            parts = f"1 train, {n_val} val" + (f", {n_test} test" if n_test else "")
            problem = f"class '{d.name}' has {len(imgs)} image(s); the split needs at least {need} ({parts})"
        if problem and not lenient:
            raise BadInput(problem)
        if problem:
            problems[d.name] = problem
            files["train"] += [[p, label] for p in imgs]
            continue
        rng = random.Random(f"{seed}-{d.name}")
        rng.shuffle(imgs)
        files["val"] += [[p, label] for p in imgs[:n_val]]
        files["test"] += [[p, label] for p in imgs[n_val:n_val + n_test]]
        files["train"] += [[p, label] for p in imgs[n_val + n_test:]]
    return Split(str(root.resolve()), classes, files, "auto", seed, val_fraction, test_fraction, problems=problems)


def _presplit(root: Path, train_dir: Path, val_dir: Path, seed: int, lenient: bool = False) -> Split:
    dirs = _class_dirs(train_dir)
    _check_classes(train_dir, dirs)
    classes = [d.name for d in dirs]
    files: dict[str, list[list]] = {s: [] for s in SPLITS}
    split_dirs = {"train": train_dir, "val": val_dir, "test": root / "test"}
    problems: dict[str, str] = {}
    for split, folder in split_dirs.items():
        if not folder.is_dir():
            continue
        extra = sorted({d.name for d in _class_dirs(folder)} - set(classes))
        if extra:
            raise BadInput(f"{folder} has class folder(s) {', '.join(extra)} that train/ does not have")
        for label, name in enumerate(classes):
            imgs = _images_in(folder / name) if (folder / name).is_dir() else []
            if not imgs and split in ("train", "val"):
                problem = f"class '{name}' has no images in {folder}; every class needs train and val images"
                if not lenient:
                    raise BadInput(problem)
                problems[name] = problem
            files[split] += [[str(p.relative_to(root)), label] for p in imgs]
    return Split(str(root.resolve()), classes, files, "presplit", seed, 0.0, 0.0, problems=problems)
