"""The training runs of a build: their settings (the final training and every search run alike) and a fresh folder
for a run that cannot be resumed. Shared by the stages (steps.py) and the search (search.py)."""
from __future__ import annotations

from pathlib import Path

VAL_FRACTION = TEST_FRACTION = 0.15


def train_config(variant: str, split, opts, run_dir: Path, epochs: int, prune: float = 0.0):
    """The build's training settings for `variant` (final training and every search run), pruned by `prune`."""
    from ..train import TrainConfig

    return TrainConfig(variant=variant, data=split.root, weights=opts.weights, epochs=epochs,
                       batch_size=opts.batch_size, seed=opts.seed, out=str(run_dir),
                       val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION, prune=prune)


def fresh(folder: Path) -> Path:
    """Remove a training run that cannot be resumed (no last.pt yet): train refuses a folder with files."""
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    return folder
