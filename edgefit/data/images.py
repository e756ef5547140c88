"""Preprocessed images of a run's split (or of any labelled folder), as every later stage needs them:
calibration for int8, parity in verify, accuracy of an artifact, error analysis."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput


@dataclass(frozen=True)
class Images:
    x: object  # torch float tensor, NCHW, normalized as in training
    labels: object  # numpy int array
    paths: list[str]  # relative to `root`
    root: str
    split: str

    def __len__(self) -> int:
        return len(self.paths)


def split_images(source, name: str, data: str | None, limit: int | None = None, seed: int = 0) -> Images:
    """Images of split `name` ("train", "val", "test", or "all" of them) from `data` or the source run's split,
    at most `limit`
    (a seeded random subset), preprocessed as in training. `source`: a checkpoint.Source. With `data` and
    name "train" (calibration), any images under the folder are used and their labels ignored."""
    import torch

    from .folder import Split, _images_in, scan
    from .pipeline import ImageSet, Preprocess, Unreadable

    pp = Preprocess.from_dict(source.preprocess)
    if data and name == "train":
        root = Path(data)
        if not root.is_dir():
            raise BadInput(f"calibration folder not found: {root}")
        imgs = [str(p.relative_to(root)) for p in _images_in(root)]
        if not imgs:
            raise BadInput(f"no images in calibration folder {root}")
        split = Split(str(root.resolve()), source.classes, {"train": [[p, 0] for p in imgs], "val": [], "test": []},
                      "calibration", seed, 0.0, 0.0)
    elif data:
        split = scan(data, seed=seed)
        if split.classes != source.classes:
            raise BadInput(f"the classes in {data} ({', '.join(split.classes[:5])}...) differ from the model's "
                           f"({', '.join(source.classes[:5])}...)")
        split.files["val"] += split.files["train"] if not split.files["val"] else []
    elif source.run_dir is not None:
        split = Split.from_dict(json.loads((Path(source.run_dir) / "split.json").read_text()))
    else:
        raise BadInput(f"no images to use: {source.checkpoint_path} is not inside a run directory; pass --data DIR "
                       "(and --calib DIR for int8)")
    if name == "test" and not split.files["test"] and not data:
        raise BadInput(f"the run's split has no test images ({split.root}); use --split val or --data DIR")
    if name == "all":
        files = split.files["train"] + split.files["val"] + split.files["test"]
    else:
        files = split.files[name] or split.files["val"]
    if limit is not None and limit < len(files):
        g = torch.Generator().manual_seed(seed)
        files = [files[i] for i in sorted(torch.randperm(len(files), generator=g)[:limit].tolist())]
    split.files = {name: files, **{k: [] for k in ("train", "val", "test") if k != name}}
    ds = ImageSet(split, name, pp, None, keep_in_memory=False)
    items = [(i, ds[i]) for i in range(len(ds))]
    good = [(i, it) for i, it in items if not isinstance(it, Unreadable)]
    if not good:
        raise BadInput(f"no readable images for {name} in {split.root}")
    x = torch.stack([it[0] for _, it in good])
    labels = torch.tensor([it[1] for _, it in good]).numpy()
    return Images(x, labels, [ds.paths[i] for i, _ in good], split.root, name)
