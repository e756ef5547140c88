"""An optional on-disk cache of decoded, resized images for repeated runs over the same folder.

One `.npy` file (uint8 CHW, read back with allow_pickle=False) per source image and preprocessing, keyed
by the file's absolute path, size and modification time and by the resize: an edited image or another
resolution misses the cache and is decoded afresh. Entries are written atomically, so concurrent loader
workers (or ranks) never read half a file. Nothing is ever evicted: delete the folder to reclaim space.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

FORMAT = 2  # bump when the decoding changes, so old entries stop matching (2: Pillow resize)


class ImageCache:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _key(self, path: Path, resize: int, interpolation: str) -> Path:
        st = path.stat()
        blob = f"{FORMAT}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{resize}|{interpolation}".encode()
        h = hashlib.sha1(blob).hexdigest()
        return self.folder / h[:2] / f"{h}.npy"

    def get(self, path: Path, resize: int, interpolation: str):
        """The cached uint8 tensor, or None (missing or unreadable entry: decode again)."""
        import numpy as np
        import torch

        try:
            return torch.from_numpy(np.load(self._key(path, resize, interpolation), allow_pickle=False))
        except (OSError, ValueError):
            return None

    def put(self, path: Path, resize: int, interpolation: str, img) -> None:
        import numpy as np

        from ..fsutil import atomic_write_bytes

        buf = io.BytesIO()
        np.save(buf, img.numpy(), allow_pickle=False)
        try:
            atomic_write_bytes(self._key(path, resize, interpolation), buf.getvalue())
        except OSError:  # a full or read-only cache folder costs speed, never the run
            pass
