"""Training configuration: validated once, with the run-directory name derived from it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import BadInput
from ..prune import MAX_CHANNEL_RATIO

STRATEGIES = ("auto", "head", "partial", "full")
OPTIMIZERS = ("auto", "adamw", "sgd")
OPTIMIZER_LR = {"adamw": 1e-3, "sgd": 0.1}  # sgd: at batch 64, scaled linearly with the batch size
# (from scratch, with no --lr, the peak rate comes from a learning-rate range test instead: lr_range.py)
JITTER = 0.3  # colour jitter strength when it is switched on
SWITCHES = ("auto", "on", "off")
OPTIMIZER_WD = {"adamw": 0.05, "sgd": 5e-5}
# `auto` picks from images per class (train split): fewer than HEAD_BELOW -> head only,
# fewer than FULL_FROM -> partial (last stages), else full fine-tuning.
HEAD_BELOW = 30
FULL_FROM = 300
MAX_PRUNE = MAX_CHANNEL_RATIO  # beyond it too little of a network is left


@dataclass
class TrainConfig:
    variant: str
    data: str
    weights: str | None = None  # imagenet | none | PATH; None -> imagenet where the zoo has weights
    strategy: str = "auto"
    epochs: int = 15
    batch_size: int = 32
    lr: float | None = None  # None -> a range test from scratch, else the optimizer's default (OPTIMIZER_LR)
    optimizer: str = "auto"  # auto: sgd from scratch, adamw when fine-tuning pretrained weights
    weight_decay: float | None = None  # None -> OPTIMIZER_WD
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    patience: int = 5
    seed: int = 0
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    flip: str = "auto"  # auto (decided from evidence) | on | off
    crop: str = "auto"  # the random resized crop's scale: auto (decided from evidence) | on (wide) | off (mild)
    jitter: float | None = None  # None: auto (JITTER when the evidence allows it, else off); 0 = off
    device: str = "auto"
    data_checks: bool = True  # content-hash checks (leaks, label conflicts) before training
    data_cache: str | None = None  # folder of resized images kept between runs (data/cache.py); None: none
    prune: float = 0.0  # share of channels removed from the starting network before training (0: as it is)
    out: str | None = None
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise BadInput(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        for name, value, low in [("epochs", self.epochs, 1), ("batch-size", self.batch_size, 1),
                                 ("patience", self.patience, 1)]:
            if not isinstance(value, int) or value < low:
                raise BadInput(f"--{name} must be a whole number >= {low}, got {value!r}")
        if self.lr is not None and not (0 < self.lr < 10):
            raise BadInput(f"--lr must be a positive learning rate below 10, got {self.lr!r}")
        if self.jitter is not None and not 0 <= self.jitter < 1:
            raise BadInput(f"--jitter must be auto or in [0, 1), got {self.jitter!r}")
        if self.flip not in SWITCHES:
            raise BadInput(f"--flip must be one of {', '.join(SWITCHES)}, got {self.flip!r}")
        if self.crop not in SWITCHES:
            raise BadInput(f"--crop must be one of {', '.join(SWITCHES)}, got {self.crop!r}")
        if self.optimizer not in OPTIMIZERS:
            raise BadInput(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not 0 <= self.prune <= MAX_PRUNE:
            raise BadInput(f"--prune is the share of channels to remove before training, in [0, {MAX_PRUNE}]; "
                           f"got {self.prune!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise BadInput(f"--device must be auto, cpu or cuda, got {self.device!r}")

    def default_lr(self, optimizer: str) -> float:
        if self.lr is not None:
            return self.lr
        return OPTIMIZER_LR[optimizer] * (self.batch_size / 64 if optimizer == "sgd" else 1.0)

    def resolved_optimizer(self, weights: str) -> str:
        if self.optimizer != "auto":
            return self.optimizer
        return "sgd" if weights == "none" else "adamw"

    def default_out(self, strategy: str, weights: str, optimizer: str) -> Path:
        w = weights if weights in ("imagenet", "none") else "file"
        lr = "auto" if self.lr is None else f"{self.lr:g}"
        pruned = f".p{self.prune:g}" if self.prune else ""
        return Path("runs") / (f"{self.variant}{pruned}.{strategy}.w-{w}.{optimizer}.e{self.epochs}.lr{lr}"
                               f".bs{self.batch_size}.s{self.seed}")

    def augment_decisions(self, strategy: str) -> dict:
        """{transform: [on, why]} for what is fixed now, None for what the evidence decides (augment_check.py)."""
        if strategy == "head":  # features are computed once, without augmentation
            return {t: [False, "head-only training on cached features"] for t in ("crop", "flip", "jitter")}
        crop = None if self.crop == "auto" else [self.crop == "on", f"--crop {self.crop}"]
        flip = None if self.flip == "auto" else [self.flip == "on", f"--flip {self.flip}"]
        jitter = None if self.jitter is None else [self.jitter > 0, f"--jitter {self.jitter:g}"]
        return {"crop": crop, "flip": flip, "jitter": jitter}

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_strategy(requested: str, weights: str, images_per_class: float, prune: float = 0.0) -> tuple[str, str]:
    """(strategy, why) by the practitioners' rule."""
    if weights == "none":
        if requested in ("head", "partial"):
            raise BadInput(f"--strategy {requested} keeps random backbone layers frozen with --weights none; "
                           "use --strategy full (or auto) to train from scratch")
        return "full", "no pretrained weights: everything is trained from scratch"
    if prune:
        if requested in ("head", "partial"):
            raise BadInput(f"--strategy {requested} keeps layers frozen, but --prune {prune:g} removed channels from "
                           "every layer; use --strategy full (or auto)")
        return "full", f"{prune:.0%} of the channels were pruned from the starting network: every layer is retrained"
    if requested != "auto":
        return requested, "requested"
    if images_per_class < HEAD_BELOW:
        return "head", (f"{images_per_class:.0f} images per class < {HEAD_BELOW}: retrain the classifier only. "
                        "Little data from a domain unlike ImageNet photos is trouble: collect more if you can")
    if images_per_class < FULL_FROM:
        return "partial", f"{images_per_class:.0f} images per class < {FULL_FROM}: fine-tune the last stages"
    return "full", f"{images_per_class:.0f} images per class >= {FULL_FROM}: fine-tune the whole network"
