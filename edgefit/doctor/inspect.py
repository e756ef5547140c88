"""One look at every file of an image folder: content hash, decodability, geometry, colour, EXIF rotation and
the small luma and chroma thumbnails the near-duplicate search compares (near.py), in parallel worker processes,
cached by (size, mtime) so a second look is instant.

Only PIL and numpy are imported here (no torch), so workers start fast.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

from .near import thumbnails

INSPECT_VERSION = 2  # 2: luma/chroma thumbnails for scale- and crop-tolerant near duplicates (was phash, thumb16)
GRAY_TOLERANCE = 6  # max channel difference (0-255) on a 32 px thumbnail for an RGB image to count as gray


def _gray(img) -> bool:
    import numpy as np

    if img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
        return True
    thumb = img.convert("RGB")
    thumb.thumbnail((32, 32))
    a = np.asarray(thumb, dtype=np.int16)
    return bool(max(np.abs(a[..., 0] - a[..., 1]).max(), np.abs(a[..., 1] - a[..., 2]).max()) <= GRAY_TOLERANCE)


def _why(e: Exception) -> str:
    text = str(e) or type(e).__name__
    low = text.lower()
    if type(e).__name__ == "UnidentifiedImageError" or "cannot identify" in low:
        return "not an image (unknown content)"
    if "truncated" in low or "unexpected end" in low or "broken data stream" in low:
        return "truncated"
    return "cannot be decoded: " + text.splitlines()[0][:100]


def inspect_file(path: str) -> dict:
    """Everything the doctor needs to know about one file (never raises)."""
    from PIL import Image

    rec: dict = {}
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return {"error": f"cannot be read: {e.strerror}"}
    rec["bytes"] = len(data)
    rec["sha256"] = hashlib.sha256(data).hexdigest()[:32]
    try:
        with Image.open(io.BytesIO(data)) as img:
            rec["format"] = img.format
            rec["exif_orientation"] = int(img.getexif().get(274, 1) or 1)
            img.load()
            rec["width"], rec["height"], rec["mode"] = img.width, img.height, img.mode
            rec["gray"] = _gray(img)
            rec.update(thumbnails(img))
    except Exception as e:  # noqa: BLE001 - any decoder failure is a finding, not a crash
        rec = {"bytes": rec["bytes"], "sha256": rec["sha256"], "error": _why(e)}
    return rec


def _cache_file(root: Path) -> Path:
    from ..paths import cache_dir

    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:20]
    return cache_dir() / "doctor" / f"{key}.json"


def inspect_all(root: Path, rel_paths: list[str], workers: int = 0,
                progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, dict], int]:
    """{relative path: record} for every file, and how many came from the cache."""
    from ..fsutil import atomic_write_json

    cache_path = _cache_file(root)
    cache: dict = {}
    try:
        doc = json.loads(cache_path.read_text())
        if doc.get("version") == INSPECT_VERSION:
            cache = doc["files"]
    except (OSError, ValueError, KeyError):
        pass
    out: dict[str, dict] = {}
    todo: list[tuple[str, list]] = []
    for rel in rel_paths:
        try:
            st = (root / rel).stat()
        except OSError as e:
            out[rel] = {"error": f"cannot be read: {e.strerror}"}
            continue
        key = [st.st_size, st.st_mtime_ns]
        hit = cache.get(rel)
        if hit and hit[0] == key:
            out[rel] = hit[1]
        else:
            todo.append((rel, key))
    cached = len(rel_paths) - len(todo)
    paths = [str(root / rel) for rel, _ in todo]
    workers = workers or os.cpu_count() or 1
    if len(paths) < 256 or workers == 1:
        records = []
        for i, p in enumerate(paths):
            records.append(inspect_file(p))
            if progress and i % 256 == 0:
                progress(cached + i, len(rel_paths))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: the caller may hold torch's thread pools, which a forked child must not inherit
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            records = []
            for i, r in enumerate(pool.map(inspect_file, paths, chunksize=64)):
                records.append(r)
                if progress and i % 256 == 0:
                    progress(cached + i, len(rel_paths))
    for (rel, key), rec in zip(todo, records, strict=True):
        out[rel] = rec
        cache[rel] = [key, rec]
    if todo:
        try:
            atomic_write_json(cache_path, {"version": INSPECT_VERSION, "root": str(root.resolve()),
                                           "files": {r: cache[r] for r in rel_paths if r in cache}})
        except OSError:
            pass  # a read-only cache is slower, not wrong
    return out, cached


def _sha(path: Path) -> dict:
    try:
        data = path.read_bytes()
    except OSError as e:
        return {"error": f"cannot be read: {e.strerror}"}
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()[:32]}


def sha256_all(root: Path, rel_paths: list[str]) -> dict[str, dict]:
    """Content hashes only (no decoding), in threads: hashlib releases the GIL on large buffers."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(2, min(8, (os.cpu_count() or 1) * 2))) as pool:
        return dict(zip(rel_paths, pool.map(lambda r: _sha(root / r), rel_paths), strict=True))
