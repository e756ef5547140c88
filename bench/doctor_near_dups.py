"""Benchmark: near-duplicate recall and false positives of `edgefit doctor` on three kinds of data at 32 and 224 px.

Each set's distinct images are split into train/ and val/ (80/20 per class); copies of training images are planted
in val/ under the same class: exact, enlarged 2x (bilinear), halved, re-encoded as JPEG quality 70, and with a border
cropped (2 px of 32 = 6.25% per side; also 3% and 12%). `edgefit doctor` runs on the folder with a fresh cache.
Recall per kind: the copy shares a finding group (leak) with its source. False positives: links that a finding
group makes between distinct pictures (a group of k distinct pictures counts k - 1), per distinct image and per
million pairs of them.

Sets (all offline): `demo` shapes (edgefit.data.demo), `digits` (scikit-learn's bundled 8x8 digits, 1797, upscaled
bilinear), `photos` (non-overlapping patches of the photos bundled with scikit-learn, china.jpg and flower.jpg, and
matplotlib's grace_hopper.jpg: 64 px patches reduced to 32, 112 px patches enlarged to 224). Copies are planted only
where the source and the copy have some contrast (luma std >= 4 at 16 px: flatter images are only checked for exact
copies); `flat_images` counts the distinct images under that line.

    .venv/bin/python bench/doctor_near_dups.py [--quick] [--name doctor_near_dups]
"""
from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout_data import digits_images  # noqa: E402
from record import save  # noqa: E402

SIZES = (32, 224)
KINDS = ("exact", "up2x", "down2x", "jpeg70", "crop6", "crop3", "crop12")
PER_KIND = 10
DISTINCT_SCORED = 300  # the most alike distinct pairs whose margin to the thresholds is reported
FLAT = 4.0  # luma std at 16 px under which doctor compares for exact copies only (near.FLAT)


def crop(im, frac: float):
    c = round(min(im.size) * frac)
    return im.crop((c, c, im.width - c, im.height - c))


def plant(im, kind: str):
    if kind == "up2x":
        return im.resize((im.width * 2, im.height * 2), Image.BILINEAR)
    if kind == "down2x":
        return im.resize((im.width // 2, im.height // 2), Image.BILINEAR)
    if kind == "jpeg70":
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=70)
        return buf.getvalue()
    return crop(im, {"crop6": 0.0625, "crop3": 0.03, "crop12": 0.12}[kind]) if kind.startswith("crop") else im


def demo_images(size: int, n: int, seed: int = 0):
    from edgefit.data.demo import make_demo_data

    with tempfile.TemporaryDirectory() as tmp:
        made = make_demo_data(Path(tmp) / "d", classes=10, per_class=n // 10, size=size, seed=seed)
        out = []
        for cls in made["classes"]:
            for p in sorted((Path(made["out"]) / cls).iterdir()):
                with Image.open(p) as im:
                    out.append((cls, im.convert("RGB")))
        return out


def photo_sources():
    import matplotlib
    from sklearn.datasets import load_sample_images

    ims = [Image.fromarray(a) for a in load_sample_images().images]
    with Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg") as im:
        ims.append(im.convert("RGB"))
    return ims


def photo_images(size: int, n: int):
    src = 64 if size == 32 else 112
    out = []
    for k, im in enumerate(photo_sources()):
        for y in range(0, im.height - src + 1, src):
            for x in range(0, im.width - src + 1, src):
                patch = im.crop((x, y, x + src, y + src))
                out.append((f"photo{k}", patch.resize((size, size), Image.BICUBIC if size > src else Image.BILINEAR)))
    return out[:n]


def contrast(im) -> float:
    return float(np.asarray(im.convert("L").resize((16, 16), Image.BILINEAR), dtype=np.float32).std())


def build(root: Path, images, seed: int):
    """train/ and val/ with planted copies; returns {rel: picture id}, {copy rel: (kind, source rel)}, flat count."""
    by_class: dict[str, list] = {}
    for cls, im in images:
        by_class.setdefault(cls, []).append(im)
    picture, train = {}, []
    for cls, ims in by_class.items():
        n_val = max(1, round(len(ims) * 0.2))
        for i, im in enumerate(ims):
            split = "val" if i >= len(ims) - n_val else "train"
            rel = f"{split}/{cls}/{i:05d}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            im.save(root / rel)
            picture[rel] = rel
            if split == "train":
                train.append((rel, cls, im))
    rng = random.Random(seed)
    copies = {}
    for kind in KINDS:
        taken = 0
        for rel, cls, im in rng.sample(train, len(train)):
            made = plant(im, kind)
            shown = Image.open(io.BytesIO(made)) if isinstance(made, bytes) else made
            if contrast(im) < FLAT or contrast(shown) < FLAT:
                continue  # flat source or flat copy: doctor compares those for exact copies only
            out = f"val/{cls}/copy_{kind}_{Path(rel).stem}.{'jpg' if kind == 'jpeg70' else 'png'}"
            if isinstance(made, bytes):
                (root / out).write_bytes(made)
            else:
                made.save(root / out)
            copies[out] = (kind, rel)
            picture[out] = rel
            taken += 1
            if taken == PER_KIND:
                break
    return picture, copies, sum(contrast(im) < FLAT for _, im in images)


def margins(root: Path, picture: dict, copies: dict) -> dict | None:
    """With the current near.py, how close the hardest cases come to each threshold: per kind of copy, the worst
    candidate-step figures and the worst ratio to the tolerance (1.0 = on it) of step 2 (thumbnails) and of the
    decision (decoded images); for distinct pictures, the closest to the decision of the DISTINCT_SCORED most alike
    pairs (uncropped thumbnails)."""
    try:
        from edgefit.doctor import near
        from edgefit.doctor.inspect import inspect_all
    except ImportError:  # an older edgefit (the 'before' run)
        return None
    rels = sorted(picture)
    recs, _ = inspect_all(root, rels)
    items = [(r, recs[r]) for r in rels]
    index = {r: i for i, r in enumerate(rels)}
    stored, decoded = near._Views(root, items, decode=False), near._Views(root, items, decode=True)
    t, mean, std, chroma = near._candidate_views(items)

    def ratio(s, loose=1.0, loose_chroma=1.0):
        return max(s["luma"] / (loose * s["tolerance"]), s["chroma"] / (loose_chroma * near.NEAR_CHROMA))

    kinds: dict[str, dict] = {}
    for c, (kind, src) in copies.items():
        a, b = index[src], index[c]
        corr, x, y, j = max((float(t[x, j] @ t[y, 0]), x, y, j) for x, y in ((a, b), (b, a))
                            for j in range(len(near.CROPS)))
        row = kinds.setdefault(kind, {"candidate_corr_min": 1.0, "mean_diff_max": 0.0, "std_ratio_max": 1.0,
                                      "chroma_diff_max": 0.0, "thumbnail_ratio_max": 0.0, "decoded_ratio_max": 0.0})
        figures = {"candidate_corr_min": corr, "mean_diff_max": abs(mean[x, j] - mean[y, 0]),
                   "std_ratio_max": max(std[x, j], std[y, 0]) / max(min(std[x, j], std[y, 0]), 1e-6),
                   "chroma_diff_max": float(np.abs(chroma[x, j] - chroma[y, 0]).max()),
                   "thumbnail_ratio_max": ratio(near.pair_score(stored(a), stored(b)), near.LOOSE, near.LOOSE_CHROMA),
                   "decoded_ratio_max": ratio(near.pair_score(decoded(a), decoded(b)))}
        for key, v in figures.items():
            row[key] = round(float(min(row[key], v) if key.endswith("_min") else max(row[key], v)), 3)
    originals = np.array([i for i, r in enumerate(rels) if picture[r] == r])
    sim = t[originals, 0] @ t[originals, 0].T
    iu = np.triu_indices(len(originals), 1)
    closest = None
    for flat in np.argsort(-sim[iu])[:DISTINCT_SCORED]:
        a, b = originals[iu[0][flat]], originals[iu[1][flat]]
        s = near.pair_score(decoded(a), decoded(b))
        if s["contrast"] >= near.FLAT and (closest is None or ratio(s) < closest["ratio"]):
            closest = {"ratio": round(ratio(s), 3), "luma": round(s["luma"], 2), "contrast": round(s["contrast"], 1),
                       "tolerance": round(s["tolerance"], 2), "chroma": round(s["chroma"], 2),
                       "corr": round(s["corr"], 4), "files": [rels[a], rels[b]]}
    return {"copies": kinds, "distinct_pairs_scored": min(DISTINCT_SCORED, len(iu[0])), "closest_distinct": closest}


def measure(name: str, images, size: int, seed: int) -> dict:
    from edgefit.doctor import doctor

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        picture, copies, flat = build(root, images, seed)
        os.environ["EDGEFIT_CACHE_DIR"] = str(Path(tmp) / "cache")
        t = time.perf_counter()
        report = doctor(root)
        seconds = time.perf_counter() - t
        group_of = {}
        links = 0
        for f in report.findings:
            for g in f.groups:
                links += len({picture[x] for x in g}) - 1 if f.code != "label_conflict" else 0
                for x in g:
                    group_of.setdefault(x, set()).update(g)
        found = {k: 0 for k in KINDS}
        planted = {k: 0 for k in KINDS}
        for c, (kind, src) in copies.items():
            planted[kind] += 1
            found[kind] += src in group_of.get(c, ())
        n = len(images)
        m = margins(root, picture, copies)
    row = {"images": n, "flat_images": flat, "planted": planted,
           "recall": {k: round(found[k] / planted[k], 3) if planted[k] else None for k in KINDS},
           "false_positive_links": links, "false_positives_per_1000_images": round(1000 * links / n, 2),
           "false_positives_per_million_pairs": round(1e6 * links / (n * (n - 1) / 2), 3),
           "doctor_seconds": round(seconds, 2)}
    if m is not None:
        row["margins"] = m
    print(name, size, row, flush=True)
    return row


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer images (a smoke run)")
    ap.add_argument("--name", default="doctor_near_dups", help="results file name under bench/results/")
    args = ap.parse_args()
    n = {"demo": 200, "digits": 300, "photos": 400} if args.quick else {"demo": 1000, "digits": 1797, "photos": 400}
    makers = {"demo": demo_images, "digits": digits_images, "photos": photo_images}
    sets = {}
    for name, make in makers.items():
        for size in SIZES:
            imgs = make(size, n[name]) if name != "demo" else make(size, n[name], seed=size)
            sets[f"{name}_{size}px"] = measure(name, imgs, size, seed=size)
    thresholds = None
    try:
        from edgefit.doctor import near

        thresholds = {k: getattr(near, k) for k in ("SIDE", "CSIDE", "CROPS", "FLAT", "NEAR_CAND", "MEAN_WINDOW",
                                                    "STD_RATIO", "CHROMA_WINDOW", "NEAR_ABS", "NEAR_REL", "NEAR_CHROMA",
                                                    "LOOSE", "LOOSE_CHROMA", "MIN_SIDE", "DECODE_SIDE")}
        thresholds["GRID"] = [near.GRID[0], near.GRID[-1], near.GRID[1] - near.GRID[0]]
    except ImportError:
        pass
    save(args.name, {"benchmark": __doc__.split("\n\n")[0], "cpu": cpu_name(), "kinds": list(KINDS),
                     "per_kind": PER_KIND, "thresholds": thresholds, "sets": sets})


if __name__ == "__main__":
    main()
