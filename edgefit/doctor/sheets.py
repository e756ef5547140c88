"""Contact sheets: what the images look like, and what the network is fed after augmentation.

samples.png: per class, a row of random training images. augmented.png: per class, two images, each
shown as the network sees it without augmentation and then under each training augmentation alone
(random resized crop, horizontal flip, colour jitter) and all together, so a person can see whether a
transform turns one class into another (a flipped left arrow is a right arrow).
"""
from __future__ import annotations

import random
from pathlib import Path

CELL = 72
LABEL_W = 120
PER_ROW = 8
AUG_COLUMNS = ("as fed", "crop", "flip", "jitter", "all")


def _grid(rows: list[tuple[str, list]], header: list[str] | None = None):
    from PIL import Image, ImageDraw

    cols = max((len(r[1]) for r in rows), default=1)
    top = 16 if header else 0
    sheet = Image.new("RGB", (LABEL_W + cols * (CELL + 2), top + len(rows) * (CELL + 2)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    if header:
        for j, h in enumerate(header[:cols]):
            d.text((LABEL_W + j * (CELL + 2) + 2, 2), h, fill=(0, 0, 0))
    for i, (label, images) in enumerate(rows):
        y = top + i * (CELL + 2)
        d.text((4, y + CELL // 2 - 6), label[:18], fill=(0, 0, 0))
        for j, im in enumerate(images):
            sheet.paste(im.convert("RGB").resize((CELL, CELL)), (LABEL_W + j * (CELL + 2), y))
    return sheet


def _png(img) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_sheets(split, out: Path, resolution: int, skip: set[str] = frozenset(), seed: int = 0) -> list[str]:
    """Write samples.png and augmented.png into `out`; returns their names."""
    import torch
    from PIL import Image
    from torchvision.transforms.v2 import functional as F

    from ..data.folder import load_rgb
    from ..data.pipeline import Augment, Preprocess, augment_image
    from ..fsutil import atomic_write_bytes

    root = Path(split.root)
    rng = random.Random(seed)
    by_class: dict[int, list[str]] = {}
    for rel, label in split.files["train"]:
        if rel not in skip:
            by_class.setdefault(label, []).append(rel)
    picks = {c: rng.sample(files, min(PER_ROW, len(files))) for c, files in by_class.items()}
    rows = []
    for c, name in enumerate(split.classes):
        ims = []
        for rel in picks.get(c, []):
            try:
                ims.append(load_rgb(root / rel))
            except Exception:  # noqa: BLE001 - an unreadable file is reported elsewhere
                continue
        rows.append((name, ims))
    atomic_write_bytes(out / "samples.png", _png(_grid(rows)))
    pp = Preprocess(resolution, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    aug = Augment(flip=True, jitter=0.3)
    torch.manual_seed(seed)
    rows = []
    for c, name in enumerate(split.classes):
        for rel in picks.get(c, [])[:2]:
            try:
                img = F.pil_to_tensor(load_rgb(root / rel))
            except Exception:  # noqa: BLE001
                continue
            img = F.resize(img, [pp.resize], antialias=True)
            cells = ([augment_image(img, pp, None)] + [augment_image(img, pp, aug, only=o)
                                                       for o in ("crop", "flip", "jitter")]
                     + [augment_image(img, pp, aug)])
            rows.append((name, [Image.fromarray(t.permute(1, 2, 0).numpy()) for t in cells]))
    atomic_write_bytes(out / "augmented.png", _png(_grid(rows, list(AUG_COLUMNS))))
    return ["samples.png", "augmented.png"]
