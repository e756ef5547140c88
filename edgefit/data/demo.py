"""`edgefit demo-data`: procedurally generated image classification sets, made offline in seconds.

`shapes` (the default): each class is a shape drawn with a random colour, size, rotation and position
over a cluttered, noisy, textured background, so that colour and position carry no information and a
real CNN is needed to tell the classes apart.

`orientation`: a hard case that flatters no default. Small grayscale images of a clock hand pointing in
one of up to 12 directions (30 degrees apart, starting at 15 degrees), with jitter in angle, length,
width, centre and brightness, and noise. A horizontal flip turns every class into another one, so
augmentation must not flip.
"""
from __future__ import annotations

import math
import random
from pathlib import Path

from ..errors import BadInput

SHAPES = ["circle", "square", "triangle", "star", "cross", "ring", "hexagon", "arrow", "crescent", "heart",
          "diamond", "pentagon"]
TEXTURES = ["solid", "stripes", "dots"]
MAX_CLASSES = len(SHAPES) * len(TEXTURES)


def class_names(k: int) -> list[str]:
    """The first k classes: every shape solid, then the shapes striped, then dotted."""
    return [f"{shape}" if tex == "solid" else f"{shape}_{tex}" for tex in TEXTURES for shape in SHAPES][:k]


def _polygon(cx, cy, r, n, rot, inner=None):
    pts = []
    for i in range(n * (2 if inner else 1)):
        radius = r if not inner or i % 2 == 0 else r * inner
        a = rot + i * (math.pi / n if inner else 2 * math.pi / n)
        pts.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
    return pts


def _rotate(pts, cx, cy, rot):
    c, s = math.cos(rot), math.sin(rot)
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in pts]


def _shape_mask(shape: str, size: int, rng: random.Random):
    from PIL import Image, ImageDraw

    mask = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(mask)
    r = size * rng.uniform(0.22, 0.38)
    cx = size / 2 + rng.uniform(-0.12, 0.12) * size
    cy = size / 2 + rng.uniform(-0.12, 0.12) * size
    rot = rng.uniform(0, 2 * math.pi)
    w = max(2, int(r * 0.45))
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif shape == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        d.ellipse([cx - r * 0.55, cy - r * 0.55, cx + r * 0.55, cy + r * 0.55], fill=0)
    elif shape == "square":
        d.polygon(_polygon(cx, cy, r, 4, rot), fill=255)
    elif shape == "diamond":
        diamond = [(cx, cy - r), (cx + r * 0.55, cy), (cx, cy + r), (cx - r * 0.55, cy)]
        d.polygon(_rotate(diamond, cx, cy, rot), fill=255)
    elif shape == "triangle":
        d.polygon(_polygon(cx, cy, r, 3, rot), fill=255)
    elif shape == "pentagon":
        d.polygon(_polygon(cx, cy, r, 5, rot), fill=255)
    elif shape == "hexagon":
        d.polygon(_polygon(cx, cy, r, 6, rot), fill=255)
    elif shape == "star":
        d.polygon(_polygon(cx, cy, r, 5, rot, inner=0.42), fill=255)
    elif shape == "cross":
        arm = [(cx - r, cy - w / 2), (cx + r, cy - w / 2), (cx + r, cy + w / 2), (cx - r, cy + w / 2)]
        d.polygon(_rotate(arm, cx, cy, rot), fill=255)
        d.polygon(_rotate(arm, cx, cy, rot + math.pi / 2), fill=255)
    elif shape == "arrow":
        body = [(cx - r, cy - w / 3), (cx + r * 0.1, cy - w / 3), (cx + r * 0.1, cy - w), (cx + r, cy),
                (cx + r * 0.1, cy + w), (cx + r * 0.1, cy + w / 3), (cx - r, cy + w / 3)]
        d.polygon(_rotate(body, cx, cy, rot), fill=255)
    elif shape == "crescent":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        ox, oy = cx + r * 0.45 * math.cos(rot), cy + r * 0.45 * math.sin(rot)
        d.ellipse([ox - r * 0.85, oy - r * 0.85, ox + r * 0.85, oy + r * 0.85], fill=0)
    elif shape == "heart":
        lobe = r * 0.52
        pts = [(cx - r, cy - r * 0.1), (cx, cy + r), (cx + r, cy - r * 0.1)]
        d.polygon(_rotate(pts, cx, cy, rot), fill=255)
        for sx in (-1, 1):
            lx, ly = _rotate([(cx + sx * lobe * 0.95, cy - r * 0.25)], cx, cy, rot)[0]
            d.ellipse([lx - lobe, ly - lobe, lx + lobe, ly + lobe], fill=255)
    return mask


def _texture(tex: str, size: int, rng: random.Random):
    from PIL import Image, ImageDraw

    m = Image.new("L", (size, size), 255)
    if tex == "solid":
        return m
    d = ImageDraw.Draw(m)
    step = max(3, size // rng.randint(7, 10))
    if tex == "stripes":
        for x in range(-size, 2 * size, step):
            d.line([(x, 0), (x + size, size)], fill=0, width=max(1, step // 2))
    else:
        for y in range(0, size, step):
            for x in range(0, size, step):
                d.ellipse([x, y, x + step // 2, y + step // 2], fill=0)
    return m


def _image(cls: str, size: int, rng: random.Random):
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    shape, _, tex = cls.partition("_")
    tex = tex or "solid"
    bg = tuple(rng.randint(0, 255) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 5)):  # clutter: thin lines and small blobs in other colours
        col = tuple(rng.randint(0, 255) for _ in range(3))
        x0, y0 = rng.uniform(0, size), rng.uniform(0, size)
        if rng.random() < 0.5:
            d.line([(x0, y0), (rng.uniform(0, size), rng.uniform(0, size))], fill=col, width=rng.randint(1, 2))
        else:
            rr = rng.uniform(1, size * 0.06)
            d.ellipse([x0 - rr, y0 - rr, x0 + rr, y0 + rr], fill=col)
    def luma(c):
        return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]

    while True:  # any hue, but the shape always stands out in brightness, as objects in photos mostly do
        fg = tuple(rng.randint(0, 255) for _ in range(3))
        if abs(luma(fg) - luma(bg)) > 70:
            break
    mask = ImageChops.multiply(_shape_mask(shape, size, rng), _texture(tex, size, rng))
    img.paste(Image.new("RGB", (size, size), fg), (0, 0), mask)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))
    import numpy as np

    gauss = np.random.default_rng(rng.getrandbits(32)).normal(128, rng.uniform(8, 24), (size, size))
    noise = Image.fromarray(gauss.clip(0, 255).astype(np.uint8), "L").convert("RGB")
    return Image.blend(img, noise, rng.uniform(0.05, 0.18))


ORIENTATION_CLASSES = 12


def orientation_names(k: int) -> list[str]:
    return [f"deg{15 + 30 * i:03d}" for i in range(k)]


def _hand(angle_deg: float, size: int, rng: random.Random):
    """A grayscale clock hand (a tapered bar with a round tip) from near the centre towards `angle_deg`
    (counter-clockwise from 3 o'clock), on a noisy background."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    scale = 4  # draw large, then downsample: smooth edges at tiny sizes
    s = size * scale
    bg = rng.randint(0, 110)
    fg = min(255, bg + rng.randint(90, 160))
    img = Image.new("L", (s, s), bg)
    d = ImageDraw.Draw(img)
    a = math.radians(angle_deg + rng.uniform(-7, 7))
    cx, cy = s / 2 + rng.uniform(-0.08, 0.08) * s, s / 2 + rng.uniform(-0.08, 0.08) * s
    length = s * rng.uniform(0.30, 0.42)
    width = s * rng.uniform(0.05, 0.09)
    tip = (cx + length * math.cos(a), cy - length * math.sin(a))
    tail = (cx - 0.12 * length * math.cos(a), cy + 0.12 * length * math.sin(a))
    nx, ny = -math.sin(a), -math.cos(a)  # normal to the hand (image y points down)
    pts = [(tail[0] + nx * width, tail[1] + ny * width), (tip[0] + nx * width * 0.35, tip[1] + ny * width * 0.35),
           (tip[0] - nx * width * 0.35, tip[1] - ny * width * 0.35), (tail[0] - nx * width, tail[1] - ny * width)]
    d.polygon(pts, fill=fg)
    r = width * 0.9
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)  # the hub
    img = img.resize((size, size), Image.BILINEAR).filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.6)))
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(4, 14), (size, size))
    return Image.fromarray((np.asarray(img, dtype=np.float32) + noise).clip(0, 255).astype(np.uint8), "L")


KINDS = ("shapes", "orientation")


def make_demo_data(out: str | Path, classes: int = 10, per_class: int = 200, size: int = 96, seed: int = 0,
                   kind: str = "shapes") -> dict:
    """Write OUT/<class>/<i>.png. Refuses to write into a non-empty folder."""
    out = Path(out)
    if kind not in KINDS:
        raise BadInput(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    top = MAX_CLASSES if kind == "shapes" else ORIENTATION_CLASSES
    if not 2 <= classes <= top:
        raise BadInput(f"--classes must be between 2 and {top} for --kind {kind}, got {classes}")
    if per_class < 1:
        raise BadInput(f"--per-class must be 1 or more, got {per_class}")
    if not 16 <= size <= 1024:
        raise BadInput(f"--size must be between 16 and 1024 pixels, got {size}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"{out} already exists and is not an empty folder; choose a new OUT")
    tmp = out.with_name(f".{out.name}.partial")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    names = class_names(classes) if kind == "shapes" else orientation_names(classes)
    for ci, cls in enumerate(names):
        (tmp / cls).mkdir(parents=True)
        for i in range(per_class):
            rng = random.Random(f"{seed}-{ci}-{i}")
            img = _image(cls, size, rng) if kind == "shapes" else _hand(15 + 30 * ci, size, rng)
            img.save(tmp / cls / f"{i:05d}.png")
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return {"out": str(out), "kind": kind, "classes": names, "per_class": per_class, "size": size, "seed": seed}
