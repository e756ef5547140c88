"""From the per-file records to findings: unreadable files, duplicates, label conflicts, leaks between
splits, class balance, geometry and colour.

Near duplicates (a resized or re-encoded copy) are found in two steps: candidate pairs whose 16 x 16
grayscale thumbnails correlate at >= NEAR_THUMB and whose perceptual hashes are within NEAR_PHASH bits,
then a check of the two images at the smaller one's own resolution (up to 64 px), where a copy still
correlates at >= NEAR_FINE but two different pictures of similar things (two circles in the same place, two
clock hands at the same angle) do not: their noise and detail differ. Measured on generated sets (see
bench/doctor_speed.py): resized, re-encoded and upscaled copies of 96 px images score >= 0.995, distinct
images at most 0.987.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

NEAR_THUMB = 0.98
NEAR_PHASH = 8
NEAR_FINE = 0.99
FINE_MAX_SIDE = 64
IMBALANCE_RATIO = 3.0  # largest / smallest class at which imbalance is reported
SMALL_CLASS_TRAIN = 20  # fewer training images than this per class is reported
MIXED_COLOR_SHARE = 0.01  # both gray and colour images present, the smaller group at least this share
ODD_ASPECT = 2.0  # longer / shorter side above which the centre crop discards much of an image


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # error | warning | info
    message: str
    count: int
    files: list[str] = field(default_factory=list)
    groups: list[list[str]] = field(default_factory=list)  # for duplicates: the files that are one picture

    def to_dict(self) -> dict:
        d = asdict(self)
        if not d["groups"]:
            d.pop("groups")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Finding:
        return cls(d["code"], d["severity"], d["message"], d["count"], list(d.get("files", [])),
                   [list(g) for g in d.get("groups", [])])


def _union_find(n: int):
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    return find, union


def _thumbs(records: list[dict]):
    import base64

    import numpy as np

    t = np.stack([np.frombuffer(base64.b64decode(r["thumb16"]), dtype=np.uint8) for r in records]).astype(np.float32)
    t -= t.mean(1, keepdims=True)
    norm = np.linalg.norm(t, axis=1, keepdims=True)
    return t / np.maximum(norm, 1e-6)


def _fine_corr(root, a: str, b: str) -> float:
    import numpy as np
    from PIL import Image

    ims = []
    for rel in (a, b):
        with Image.open(root / rel) as im:
            ims.append(im.convert("RGB"))
    side = min(FINE_MAX_SIDE, *(min(im.size) for im in ims))
    vs = []
    for im in ims:  # colour counts: two pictures of the same shape in other colours are not copies
        v = np.asarray(im.resize((side, side), Image.BILINEAR), dtype=np.float32).reshape(-1, 3)
        v = (v - v.mean(0)).ravel()
        vs.append(v / max(float(np.linalg.norm(v)), 1e-6))
    return float(vs[0] @ vs[1])


def near_pairs(root, items: list[tuple[str, dict]], block: int = 512) -> list[tuple[int, int]]:
    """Index pairs of near-duplicate images among `items` [(path, record)] (exact copies included)."""
    import numpy as np

    if len(items) < 2:
        return []
    t = _thumbs([r for _, r in items])
    ph = np.array([int(r["phash"], 16) for _, r in items], dtype=np.uint64)
    pairs = []
    n = len(items)
    for i in range(0, n, block):
        c = t[i:i + block] @ t[i:].T
        rows, cols = np.nonzero(c >= NEAR_THUMB)
        keep = cols > rows  # upper triangle: j > i
        rows, cols = rows[keep] + i, cols[keep] + i
        close = np.bitwise_count(ph[rows] ^ ph[cols]) <= NEAR_PHASH
        pairs += list(zip(rows[close].tolist(), cols[close].tolist(), strict=True))
    out = []
    for a, b in pairs:
        ra, rb = items[a][1], items[b][1]
        if ra["sha256"] == rb["sha256"] or _fine_corr(root, items[a][0], items[b][0]) >= NEAR_FINE:
            out.append((a, b))
    return out


def duplicate_findings(root, images: list[tuple[str, dict, str, str]], near: bool = True) -> list[Finding]:
    """images: [(path, record, class, split)] of decodable images. Exact (and, with `near`, near) copies
    grouped, then reported as label conflicts (several classes), leaks (training and validation/test), or
    duplicates."""
    find, union = _union_find(len(images))
    by_hash: dict[str, int] = {}
    exact = set()
    for i, (_, rec, _, _) in enumerate(images):
        j = by_hash.setdefault(rec["sha256"], i)
        if j != i:
            union(i, j)
            exact.add(i)
            exact.add(j)
    for a, b in near_pairs(root, [(p, r) for p, r, _, _ in images]) if near else []:
        union(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(len(images)):
        groups.setdefault(find(i), []).append(i)
    conflict, leak, dup, near = [], [], [], []
    for members in groups.values():
        if len(members) < 2:
            continue
        files = [images[i][0] for i in members]
        classes = {images[i][2] for i in members}
        splits = {images[i][3] for i in members}
        if len(classes) > 1:
            conflict.append(files)
        if "train" in splits and splits & {"val", "test"}:
            leak.append(files)
        elif len(classes) == 1:
            all_exact = all(i in exact for i in members) and len({images[i][1]["sha256"] for i in members}) == 1
            (dup if all_exact else near).append(files)
    out = []
    if conflict:
        n = sum(len(g) for g in conflict)
        out.append(Finding("label_conflict", "error",
                           f"{len(conflict)} picture(s) appear under more than one class ({n} files): the same image "
                           "cannot have two labels; keep one copy under the right class", n,
                           [f for g in conflict for f in g], conflict))
    if leak:
        split_of = {p: s for p, _, _, s in images}
        held = [f for g in leak for f in g if split_of[f] != "train"]
        out.append(Finding("leak", "error",
                           f"{len(held)} validation/test image(s) are copies (exact or resized/re-encoded) of training "
                           "images: the measured accuracy is inflated; remove them from one side of the split",
                           len(held), held, leak))
    if dup:
        n = sum(len(g) - 1 for g in dup)
        out.append(Finding("duplicate", "warning",
                           f"{n} exact duplicate file(s) within a class: they weigh those pictures double; keep one",
                           n, [f for g in dup for f in g], dup))
    if near:
        n = sum(len(g) - 1 for g in near)
        out.append(Finding("near_duplicate", "warning",
                           f"{n} near-duplicate image(s) (resized or re-encoded copies) within a class: they weigh "
                           "those pictures double; keep one", n, [f for g in near for f in g], near))
    return out


def file_findings(bad: list[tuple[str, str]], foreign_images: list[str], others: list[str]) -> list[Finding]:
    """bad: [(path, why)] image files that cannot be decoded; foreign_images: images whose extension training
    does not read; others: files that are not images at all."""
    out = []
    if bad:
        kinds: dict[str, int] = {}
        for _, why in bad:
            kinds[why.split(":")[0]] = kinds.get(why.split(":")[0], 0) + 1
        out.append(Finding("unreadable", "warning",
                           f"{len(bad)} image file(s) cannot be used ("
                           + ", ".join(f"{n} {k}" for k, n in kinds.items())
                           + "): training skips them; replace or delete them", len(bad), [p for p, _ in bad]))
    if foreign_images:
        out.append(Finding("ignored_image", "warning",
                           f"{len(foreign_images)} image(s) have an extension training does not read "
                           f"(e.g. {foreign_images[0]}): rename them (.png, .jpg, ...) or they are left out",
                           len(foreign_images), foreign_images))
    if others:
        out.append(Finding("not_an_image", "info", f"{len(others)} file(s) that are not images are ignored "
                           f"(e.g. {others[0]})", len(others), others))
    return out


def balance_findings(counts: dict[str, int], train_counts: dict[str, int], problems: dict[str, str]) -> list[Finding]:
    out = []
    nonzero = {c: n for c, n in counts.items() if n}
    if len(nonzero) >= 2:
        big, small = max(nonzero, key=nonzero.get), min(nonzero, key=nonzero.get)
        ratio = nonzero[big] / nonzero[small]
        if ratio >= IMBALANCE_RATIO:
            few = sorted(c for c, n in nonzero.items() if n * IMBALANCE_RATIO <= nonzero[big])
            out.append(Finding("imbalance", "warning",
                               f"classes are imbalanced {ratio:.1f}:1 ('{big}' {nonzero[big]} images, '{small}' "
                               f"{nonzero[small]}): top-1 hides the small classes; look at per-class recall "
                               "(`edgefit errors`), collect more of them, or weight the loss", len(few), few))
    if problems:
        out.append(Finding("small_class", "error",
                           f"{len(problems)} class(es) cannot be split for training: "
                           + "; ".join(problems.values()), len(problems), sorted(problems)))
    small = sorted(c for c, n in train_counts.items() if c not in problems and n < SMALL_CLASS_TRAIN)
    if small:
        out.append(Finding("small_class", "warning",
                           f"{len(small)} class(es) have fewer than {SMALL_CLASS_TRAIN} training images (e.g. "
                           f"'{small[0]}' {train_counts[small[0]]}): too few to learn from scratch; use pretrained "
                           "weights (--weights imagenet, strategy head) or collect more", len(small), small))
    return out


def geometry_findings(images: list[tuple[str, dict]], resolution: int) -> tuple[list[Finding], dict]:
    """Sizes, aspect, colour and EXIF rotation of the decodable images; `resolution`: the network input."""
    import numpy as np

    if not images:
        return [], {}
    w = np.array([r["width"] for _, r in images])
    h = np.array([r["height"] for _, r in images])
    short, aspect = np.minimum(w, h), np.maximum(w, h) / np.minimum(w, h)
    gray = [p for p, r in images if r.get("gray")]
    rotated = [p for p, r in images if r.get("exif_orientation", 1) != 1]
    geo = {"width": _spread(w), "height": _spread(h), "aspect": _spread(aspect.round(3)),
           "gray": len(gray), "colour": len(images) - len(gray),
           "modes": _tally(r["mode"] for _, r in images), "formats": _tally(r["format"] for _, r in images)}
    out = []
    tiny = [p for (p, _), s in zip(images, short, strict=True) if s < resolution]
    if tiny:
        from .. import zoo

        median = int(np.median(short))
        sizes = sorted({v.resolution for v in zoo.variants()})
        near = next((r for r in sizes if r >= median), sizes[-1])
        out.append(Finding("small_images", "warning",
                           f"{len(tiny)} of {len(images)} images are smaller than the {resolution} px input they will "
                           f"be upsampled to (median shorter side {median} px): upsampling costs compute and adds no "
                           f"detail; prefer the zoo's resolution nearest their size (`edgefit build --max-resolution "
                           f"{near}`)", len(tiny), tiny))
    if gray and len(gray) < len(images) and min(len(gray), len(images) - len(gray)) >= MIXED_COLOR_SHARE * len(images):
        smaller = gray if len(gray) <= len(images) - len(gray) else [p for p, r in images if not r.get("gray")]
        out.append(Finding("mixed_color", "warning",
                           f"{len(gray)} grayscale and {len(images) - len(gray)} colour images: if colour differs by "
                           "class or by split the network learns it as a shortcut; convert all to one mode",
                           len(smaller), smaller))
    if rotated:
        out.append(Finding("exif_rotated", "info",
                           f"{len(rotated)} image(s) carry an EXIF rotation; edgefit applies it when loading (as a "
                           "viewer shows them), other tools may not", len(rotated), rotated))
    odd = [p for (p, _), a in zip(images, aspect, strict=True) if a > ODD_ASPECT]
    if len(odd) > 0.1 * len(images):
        out.append(Finding("odd_aspect", "warning",
                           f"{len(odd)} images are more than {ODD_ASPECT:g}:1: the centre crop discards much of each; "
                           "crop or pad them to the object", len(odd), odd))
    return out, geo


def _spread(a) -> dict:
    import numpy as np

    return {"min": float(np.min(a)), "median": float(np.median(a)), "max": float(np.max(a))}


def _tally(values) -> dict:
    out: dict = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out
