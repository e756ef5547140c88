"""What the stages of `edgefit build` hand each other: one frozen record per stage, persisted by `Stages.run`
as `stages/<name>.json` (`to_dict`) and read back on a rerun (`from_dict`). The keys are the record's fields,
so a build directory written before these types existed reads back the same."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..deploy.bundle import Bundle
from ..record import Record


@dataclass(frozen=True)
class Selected(Record):
    """select: the zoo ranked on the cost lines; `chosen` is trained (or pruned when `needs_compress`)."""

    feasible: list[dict]
    rejected: list[dict]
    needs_compress: bool
    chosen: str
    predicted: dict
    nearest_miss: dict | None = None
    pruned: list[dict] = field(default_factory=list)  # larger variants pruned to fit, for the search (joint.py)

    def candidate(self, name: str) -> dict:
        """select's predictions for `name` (a search may have trained another than the first)."""
        return next((c for c in self.feasible + self.pruned if c["name"] == name), self.predicted)

    def search_pool(self, k: int) -> list[dict]:
        """The `k` candidates a search tries: the best-ranked variants that fit, the pruned ones after them."""
        return self.feasible[:max(0, k - len(self.pruned))] + self.pruned[:k]


@dataclass(frozen=True)
class Searched(Record):
    """search: short fine-tunes of the best candidates, ranked by validation top-1 then predicted latency."""

    tried: list[dict]
    winner: str
    executor: str = "local"  # local | ray (search.py)

    def trial(self, name: str) -> dict | None:
        return next((t for t in self.tried if t["name"] == name), None)

    def val_top1(self, name: str) -> float | None:
        t = self.trial(name)
        return None if t is None else t["val_top1"]


@dataclass(frozen=True)
class Trained(Record):
    run_dir: str
    variant: str
    val_top1: float
    epochs_run: int
    best_sha256: str
    weights: dict | str | None = None
    diagnostics: list[dict] = field(default_factory=list)
    data_checks: list[dict] = field(default_factory=list)
    decisions: dict = field(default_factory=dict)
    prune_ratio: float = 0.0  # channels removed from the starting network (a pruned search candidate)

    @property
    def name(self) -> str:
        """The candidate trained, as select and the search name it."""
        from .joint import candidate_name

        return candidate_name(self.variant, self.prune_ratio)


@dataclass(frozen=True)
class Compressed(Record):
    run_dir: str
    val_top1: float
    channel_ratio: float
    macs_removed: float
    host_speedup: float | None
    verdict: str
    best_sha256: str


@dataclass(frozen=True)
class QatTrained(Record):
    run_dir: str
    val_top1: float
    qat: dict
    best_sha256: str


@dataclass(frozen=True)
class Parity(Record):
    """verify: every export against the trained model on the same images."""

    passed: bool
    samples: int
    images: str
    artifacts: list[dict]

    @property
    def lowest_agreement(self) -> float:
        return min(a["top1_agreement"] for a in self.artifacts)

    @property
    def required_agreement(self) -> float:
        return max(a["tolerance"]["min_agreement"] for a in self.artifacts)

    def agreement(self) -> dict[str, float]:
        return {a["file"]: a["top1_agreement"] for a in self.artifacts}


@dataclass(frozen=True)
class Exported(Record):
    files: list[str]
    final: str
    io: str
    sha256: dict[str, str]
    macs: int
    params: int
    parity: Parity
    tflm: dict | None = None
    outside_fast_path: dict = field(default_factory=dict)
    float_layers: dict = field(default_factory=dict)  # {file: layers an int8 artifact keeps float to hold parity}


@dataclass(frozen=True)
class Evaluated(Record):
    """Top-1 of every artifact and of the float model on the held-out test split."""

    test_images: int
    float_top1: float
    artifact_top1: dict[str, float]
    chance: float
    per_class_images: list[int]
    stats: dict


@dataclass(frozen=True)
class Benched(Record):
    final: str
    row: dict
    machine: dict
    lines: list[dict] = field(default_factory=list)

    def line(self, constraint: str) -> dict | None:
        return next((ln for ln in self.lines if ln["constraint"] == constraint), None)


@dataclass(frozen=True)
class Errors(Record):
    dir: str
    model: str
    n: int
    top1: float
    errors: int
    pairs: list[dict]
    worst_classes: list[dict]


@dataclass(frozen=True)
class Int8Result(Record):
    """One int8 export as the QAT decision sees it: parity, agreement and test top-1 per artifact."""

    parity_passed: bool
    agreement: dict[str, float]
    test_top1: dict[str, float]
    float_test_top1: float
    float_layers: dict = field(default_factory=dict)  # {file: layers kept float by the fallback}

    @classmethod
    def of(cls, exported: Exported, evaluated: Evaluated) -> Int8Result:
        return cls(exported.parity.passed, exported.parity.agreement(), evaluated.artifact_top1,
                   evaluated.float_top1, exported.float_layers)


@dataclass(frozen=True)
class QatOutcome(Record):
    why: str
    epochs: int
    kept: bool
    before: Int8Result
    after: Int8Result


@dataclass(frozen=True)
class PrecisionChoice(Record):
    """--host-is-target with an int8 budget: the final int8 artifact and its fp32 sibling timed together on this
    host (the target), and which one the build keeps. fp32 is kept only when int8 is measurably slower (beyond
    what the timing can tell apart) and fp32 meets the cost lines, parity and the accuracy int8 met."""

    chosen: str  # int8 | fp32
    why: str
    speed: dict  # export.speed.PrecisionSpeed of the two final files
    fp32_failing: list[str] = field(default_factory=list)  # the budget lines fp32 would miss


@dataclass(frozen=True)
class Deployed(Record):
    """deploy: the bundles written from the final verified artifacts (`--target`)."""

    bundles: list[Bundle]


def as_json(value: Any) -> Any:
    return value.to_dict() if isinstance(value, Record) else value


@dataclass(frozen=True)
class ParityTry(Record):
    """One candidate trained, exported and verified at int8 (after QAT when it ran): whether its final artifact
    held parity. The build tries the next candidate while they fail, and keeps the best (candidate.py)."""

    name: str
    variant: str
    prune_ratio: float
    passed: bool
    lowest_agreement: float
    required_agreement: float
    test_top1: float  # of the final artifact on the held-out test split
    float_test_top1: float
    qat: bool  # quantization-aware training ran for it
    run_dir: str
    art_dir: str
    kept: bool = False  # the candidate the build went on with
