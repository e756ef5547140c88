"""What is exported: an `edgefit train` run directory or its checkpoint, and the images that go with it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import checkpoint
from ..errors import BadInput


@dataclass
class Source:
    checkpoint_path: Path
    ck: dict
    run_dir: Path | None

    @property
    def classes(self) -> list[str]:
        return self.ck["classes"]

    @property
    def preprocess(self) -> dict:
        return self.ck["preprocess"]

    def model(self):
        return checkpoint.build_model(self.ck)


def open_source(path: str | Path) -> Source:
    p = Path(path)
    if p.is_dir():
        best = p / "best.pt"
        if not best.is_file():
            raise BadInput(f"{p} has no best.pt; give an `edgefit train` run directory or a checkpoint file")
        return Source(best, checkpoint.load(best), p)
    ck = checkpoint.load(p)
    run_dir = p.parent if (p.parent / "split.json").is_file() else None
    return Source(p, ck, run_dir)


def split_images(source: Source, name: str, data: str | None, limit: int, seed: int = 0):
    """(float NCHW images preprocessed as in training, labels) from --data or the run's split."""
    import torch

    from ..data.folder import Split, scan
    from ..data.pipeline import ImageSet, Preprocess

    pp = Preprocess.from_dict(source.preprocess)
    if data and name == "train":  # calibration: any images under the folder, labels unused
        from ..data.folder import _images_in

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
        split = Split.from_dict(json.loads((source.run_dir / "split.json").read_text()))
    else:
        raise BadInput(f"no images to use: {source.checkpoint_path} is not inside a run directory; pass --data DIR "
                       "(and --calib DIR for int8)")
    files = split.files[name] or split.files["val"]
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(files), generator=g).tolist()[:limit]
    split.files = {name: [files[i] for i in order], **{k: [] for k in ("train", "val", "test") if k != name}}
    ds = ImageSet(split, name, pp, None)
    if len(ds) == 0:
        raise BadInput(f"no readable images for {name} in {split.root}")
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    return x, torch.tensor(ds.labels)
