"""From the per-file records to findings: unreadable files, duplicates, label conflicts, leaks between
splits, class balance, geometry and colour.

Exact copies share a content hash; near copies (enlarged, reduced, re-encoded, or trimmed by a small border) are
found by near.py.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .near import near_pairs

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
                           f"{len(held)} validation/test image(s) are copies (exact, resized, re-encoded or cropped) "
                           "of training images: the measured accuracy is inflated; remove them from one side of the "
                           "split",
                           len(held), held, leak))
    if dup:
        n = sum(len(g) - 1 for g in dup)
        out.append(Finding("duplicate", "warning",
                           f"{n} exact duplicate file(s) within a class: they weigh those pictures double; keep one",
                           n, [f for g in dup for f in g], dup))
    if near:
        n = sum(len(g) - 1 for g in near)
        out.append(Finding("near_duplicate", "warning",
                           f"{n} near-duplicate image(s) (resized, re-encoded or cropped copies) within a class: they "
                           "weigh those pictures double; keep one", n, [f for g in near for f in g], near))
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
