"""Near duplicates: copies of one picture that were resized (up or down), re-encoded, or trimmed by a small border,
found from the thumbnails inspect.py stores for every file, in three steps:

1. candidates: the 16 px luma thumbnails of centre crops (CROPS, 0-12% per side) of every image against the
   uncropped thumbnails of the others, correlation >= NEAR_CAND, among images of similar brightness, contrast and
   mean colour (a window on sorted brightness keeps this far below n^2 on varied data);
2. a check of the candidates on the stored thumbnails, with the finer crop search of step 3 and LOOSE (LOOSE_CHROMA)
   times its tolerance;
3. the decision on the decoded images: at the best centred crop (0-14% per side, of either image) the two differ at
   16 px luma by at most NEAR_ABS + NEAR_REL x their contrast (RMS, gray levels 0-255) and in colour at 8 px by at
   most NEAR_CHROMA.

Both images are compared at one small common scale, so a 2x enlargement, a halved copy and the original agree. The
tolerance is absolute plus a share of the contrast, not a correlation: re-encoding and resampling add noise of a few
gray levels whatever the picture, while two distinct pictures of the same thing (two handwritten 1s, two circles in
one place) differ by a share of their contrast. bench/doctor_near_dups.py measures both sides on demo shapes,
digits and photo patches at 32 and 224 px (bench/results/doctor_near_dups.json); the thresholds sit between them.

A crop is a border of equal width in pixels on every side (`f` x the shorter side). Images smaller than MIN_SIDE,
and images flatter than FLAT (luma std at 16 px: sky, a blank page) are only compared for exact copies: a copy of a
flat image and a different flat image differ by the same noise.
"""
from __future__ import annotations

import base64
from functools import lru_cache

THUMB = 32  # stored luma thumbnail, px a side at most (a smaller image keeps its own size)
CHROMA = 8  # stored chroma (Cb, Cr) thumbnail, px a side at most
SIDE = 16  # the common scale of the comparison, luma
CSIDE = 8  # the common scale of the comparison, colour
MIN_SIDE = 16  # smaller images are only compared for exact copies
CROPS = (0.0, 0.03, 0.06, 0.09, 0.12)  # centre crops tried in the candidate step, share of the shorter side
GRID = tuple(round(0.005 * i, 3) for i in range(29))  # crops tried when checking: 0 to 14% per side
DECODE_SIDE = 128  # decoded images are box-reduced to about this shorter side before the check
FLAT = 4.0  # luma std at 16 px (gray levels) under which an image is too flat to compare
NEAR_CAND = 0.97  # candidate: correlation of the 16 px luma thumbnails at the best crop
MEAN_WINDOW = 6.0  # candidate: mean luma within this many gray levels
STD_RATIO = 1.3  # candidate: luma contrast within this ratio
CHROMA_WINDOW = 10.0  # candidate: mean Cb and Cr each within this many levels
NEAR_ABS = 1.0  # copy: RMS luma difference at 16 px <= NEAR_ABS + NEAR_REL x contrast
NEAR_REL = 0.06
NEAR_CHROMA = 8.0  # copy: RMS chroma difference at 8 px <= NEAR_CHROMA
LOOSE = 2.0  # the thumbnail check's luma tolerance, times the decision's
LOOSE_CHROMA = 3.0  # and its colour tolerance (the stored chroma is 8 px: a crop of it is coarse)
BLOCK = 512  # rows per matrix product in the candidate step
BATCH = 128  # pairs per step-2 batch
VIEWS_KEPT = 2048  # images whose crops are kept (45 KB each)


def thumbnails(img) -> dict:
    """The record fields inspect.py stores: luma at most THUMB px a side, chroma (Cb then Cr) at most CHROMA."""
    from PIL import Image

    rgb = img.convert("RGB")
    k = min(rgb.size) // (4 * THUMB)
    if k >= 2:  # a box reduction first: cheap on large photos, and the resize below still antialiases
        rgb = rgb.reduce(k)
    ycc = rgb.convert("YCbCr")
    w, h = ycc.size
    y = ycc.getchannel(0).resize((min(THUMB, w), min(THUMB, h)), Image.BILINEAR)
    c = ycc.resize((min(CHROMA, w), min(CHROMA, h)), Image.BILINEAR)
    return {"luma": [y.width, y.height, base64.b64encode(y.tobytes()).decode()],
            "chroma": [c.width, c.height, base64.b64encode(c.getchannel(1).tobytes() + c.getchannel(2).tobytes())
                       .decode()]}


@lru_cache(maxsize=8192)
def _matrix(n_in: int, crop: float, n_out: int):
    """Resampling weights (n_out x n_in) of the centre of a row of n_in pixels without `crop` of it on each side:
    Pillow's antialiased bilinear filter (triangle, support scaled with the reduction)."""
    import numpy as np

    x0 = n_in * crop
    scale = n_in * (1 - 2 * crop) / n_out
    centers = x0 + (np.arange(n_out) + 0.5) * scale
    w = np.clip(1 - np.abs(np.arange(n_in) + 0.5 - centers[:, None]) / max(scale, 1.0), 0, None)
    return (w / w.sum(1, keepdims=True)).astype(np.float32)


def _crops(arr, width: int, height: int, fractions, out: int):
    """Centre crops of `arr` (h x w [x c], a picture of width x height px) at `fractions` of the shorter side per
    side, each resampled to out x out: k x out x out [x c]."""
    import numpy as np

    short = min(width, height)
    mh = np.stack([_matrix(arr.shape[0], round(f * short / height, 5), out) for f in fractions])
    mw = np.stack([_matrix(arr.shape[1], round(f * short / width, 5), out) for f in fractions])
    if arr.ndim == 2:
        return mh @ arr @ mw.transpose(0, 2, 1)
    return np.stack([mh @ arr[..., c] @ mw.transpose(0, 2, 1) for c in range(arr.shape[2])], -1)


def _stored(rec: dict):
    import numpy as np

    lw, lh, lb = rec["luma"]
    cw, ch, cb = rec["chroma"]
    luma = np.frombuffer(base64.b64decode(lb), dtype=np.uint8).astype(np.float32).reshape(lh, lw)
    chroma = np.frombuffer(base64.b64decode(cb), dtype=np.uint8).astype(np.float32).reshape(2, ch, cw)
    return luma, chroma.transpose(1, 2, 0)


def _decoded(path):
    """Luma and chroma of the file, box-reduced to about DECODE_SIDE on the shorter side."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        im.draft("RGB", (DECODE_SIDE, DECODE_SIDE))  # JPEG: decode at a smaller scale, never below the request
        rgb = im.convert("RGB")
    k = min(rgb.size) // DECODE_SIDE
    if k >= 2:
        rgb = rgb.reduce(k)
    a = np.asarray(rgb.convert("YCbCr"), dtype=np.float32)
    return a[..., 0], a[..., 1:]


class _Views:
    """Crops of each image at GRID (luma k x 256, chroma k x 128), from the stored thumbnails or the decoded file,
    kept for the last VIEWS_KEPT images asked for."""

    def __init__(self, root, items, decode: bool):
        from collections import OrderedDict

        self.root, self.items, self.decode, self.cache = root, items, decode, OrderedDict()

    def __call__(self, i: int):
        if i in self.cache:
            self.cache.move_to_end(i)
            return self.cache[i]
        rel, rec = self.items[i]
        luma, chroma = _decoded(self.root / rel) if self.decode else _stored(rec)
        w, h = rec["width"], rec["height"]
        view = (_crops(luma, w, h, GRID, SIDE).reshape(len(GRID), -1),
                _crops(chroma, w, h, GRID, CSIDE).reshape(len(GRID), -1))
        self.cache[i] = view
        if len(self.cache) > VIEWS_KEPT:
            self.cache.popitem(last=False)
        return view


def scores(a: list, b: list) -> dict:
    """For pairs of views (a[i], b[i]: _Views entries), the best centred crop of either image against the other:
    correlation, RMS luma difference, contrast (the smaller std) and RMS chroma difference there, arrays by pair."""
    import numpy as np

    la, lb = np.stack([v[0] for v in a]), np.stack([v[0] for v in b])
    k, rows = len(GRID), np.arange(len(a))
    x = np.concatenate([la, np.repeat(la[:, :1], k - 1, 1)], 1)  # a cropped vs b whole, then a whole vs b cropped
    y = np.concatenate([np.repeat(lb[:, :1], k, 1), lb[:, 1:]], 1)
    x -= x.mean(2, keepdims=True)
    y -= y.mean(2, keepdims=True)
    corr = (x * y).sum(2) / np.maximum(np.sqrt((x * x).sum(2) * (y * y).sum(2)), 1e-6)
    best = corr.argmax(1)
    xb, yb = x[rows, best], y[rows, best]
    ca = np.stack([v[1] for v in a])[rows, np.where(best < k, best, 0)]
    cb = np.stack([v[1] for v in b])[rows, np.where(best < k, 0, best - k + 1)]
    return {"corr": corr[rows, best], "luma": np.sqrt(((xb - yb) ** 2).mean(1)),
            "contrast": np.minimum(xb.std(1), yb.std(1)), "chroma": np.sqrt(((ca - cb) ** 2).mean(1)),
            "crop_a": np.asarray(GRID)[np.where(best < k, best, 0)],
            "crop_b": np.asarray(GRID)[np.where(best < k, 0, best - k + 1)]}


def pair_score(a: tuple, b: tuple) -> dict:
    """scores() of one pair, as floats, with the tolerance its luma difference is held to."""
    s = {key: float(v[0]) for key, v in scores([a], [b]).items()}
    return {**s, "tolerance": NEAR_ABS + NEAR_REL * s["contrast"]}


def is_copy(s: dict, loose: float = 1.0, loose_chroma: float = 1.0):
    """The decision (on floats or arrays of scores()): enough contrast, luma and colour within tolerance (times
    `loose` and `loose_chroma`)."""
    return ((s["contrast"] >= FLAT) & (s["luma"] <= loose * (NEAR_ABS + NEAR_REL * s["contrast"]))
            & (s["chroma"] <= loose_chroma * NEAR_CHROMA))


def _candidate_views(items):
    """Per image and crop of CROPS: the 16 px luma, mean-removed and normalised (n x k x 256), its mean and std
    (n x k), and the mean chroma (n x k x 2)."""
    import numpy as np

    n, k = len(items), len(CROPS)
    t = np.zeros((n, k, SIDE * SIDE), dtype=np.float32)
    chroma = np.zeros((n, k, 2), dtype=np.float32)
    groups: dict[tuple, list[int]] = {}
    for i, (_, rec) in enumerate(items):
        short = min(rec["width"], rec["height"])
        key = (*rec["luma"][:2], *rec["chroma"][:2], round(short / rec["width"], 4), round(short / rec["height"], 4))
        groups.setdefault(key, []).append(i)
    for (lw, lh, cw, ch, fx, fy), idx in groups.items():
        stored = [_stored(items[i][1]) for i in idx]
        luma, col = np.stack([s[0] for s in stored]), np.stack([s[1] for s in stored])
        for j, f in enumerate(CROPS):
            mh, mw = _matrix(lh, round(f * fy, 5), SIDE), _matrix(lw, round(f * fx, 5), SIDE)
            t[idx, j] = (mh @ luma @ mw.T).reshape(len(idx), -1)
            rows, cols = _matrix(ch, round(f * fy, 5), CSIDE).mean(0), _matrix(cw, round(f * fx, 5), CSIDE).mean(0)
            chroma[idx, j] = np.einsum("h,ghwc,w->gc", rows, col, cols)
    mean = t.mean(2)
    t -= mean[..., None]
    std = np.sqrt((t * t).mean(2))
    t /= np.maximum(std, 1e-6)[..., None] * SIDE
    return t, mean, std, chroma


def candidates(items) -> list[tuple[int, int]]:
    """Index pairs (i < j) whose thumbnails agree at some crop of one of them (step 1)."""
    import numpy as np

    t, mean, std, chroma = _candidate_views(items)
    sizes = np.array([min(r["width"], r["height"]) for _, r in items])
    idx = np.nonzero((sizes >= MIN_SIDE) & (std[:, 0] >= FLAT))[0]
    if len(idx) < 2:
        return []
    cols = idx[np.argsort(mean[idx, 0], kind="stable")]
    col_mean, col_std, c0 = mean[cols, 0], std[cols, 0], t[cols, 0]
    found = []
    for j in range(len(CROPS)):
        rows_all = idx[np.argsort(mean[idx, j], kind="stable")]
        for s in range(0, len(rows_all), BLOCK):
            rows = rows_all[s:s + BLOCK]
            lo = np.searchsorted(col_mean, mean[rows, j].min() - MEAN_WINDOW, "left")
            hi = np.searchsorted(col_mean, mean[rows, j].max() + MEAN_WINDOW, "right")
            if hi <= lo:
                continue
            r, c = np.nonzero(t[rows, j] @ c0[lo:hi].T >= NEAR_CAND)
            a, b = rows[r], cols[lo + c]
            ratio = std[a, j] / np.maximum(col_std[lo + c], 1e-6)
            keep = ((a != b) & (np.abs(mean[a, j] - col_mean[lo + c]) <= MEAN_WINDOW)
                    & (ratio <= STD_RATIO) & (ratio >= 1 / STD_RATIO)
                    & (np.abs(chroma[a, j] - chroma[b, 0]).max(1) <= CHROMA_WINDOW))
            found.append(np.stack([np.minimum(a, b)[keep], np.maximum(a, b)[keep]], 1))
    if not found:
        return []
    pairs = np.unique(np.concatenate(found), axis=0)
    return [(int(a), int(b)) for a, b in pairs]


def near_pairs(root, items: list[tuple[str, dict]]) -> list[tuple[int, int]]:
    """Index pairs of near-duplicate images among `items` [(path relative to root, record)]; exact copies are
    found by their content hash elsewhere."""
    from pathlib import Path

    usable = [i for i, (_, r) in enumerate(items) if "luma" in r and "chroma" in r]
    if len(usable) < 2:
        return []
    sub = [items[i] for i in usable]
    stored, decoded = _Views(Path(root), sub, decode=False), _Views(Path(root), sub, decode=True)
    pairs = candidates(sub)
    likely = []
    for s in range(0, len(pairs), BATCH):  # step 2, on the thumbnails
        batch = pairs[s:s + BATCH]
        keep = is_copy(scores([stored(a) for a, _ in batch], [stored(b) for _, b in batch]), LOOSE, LOOSE_CHROMA)
        likely += [p for p, k in zip(batch, keep, strict=True) if k]
    out = []
    for a, b in likely:  # step 3, on the decoded images
        try:
            if is_copy(pair_score(decoded(a), decoded(b))):
                out.append((usable[a], usable[b]))
        except Exception:  # noqa: BLE001 - the file changed or vanished since it was inspected: not a finding
            continue
    return out
