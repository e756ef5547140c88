"""The one budget verdict: every budget line judged one way, whoever asks (select, compress, bench, build).

A caller gathers what it knows about a model as `Figures` (each a value with how it was obtained:
measured on an artifact, predicted by the cost model or a latency profile, or a published prior) and
`judge` turns them into `Line`s with limit, pass/fail and margin. No other module compares a figure
with a budget limit.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from .budget import Budget

# which way each line passes: a figure at most the limit, or at least the limit
MAX, MIN = "max", "min"
DIRECTION = {"storage_kb": MAX, "ram_kb": MAX, "target_fps": MIN, "min_accuracy": MIN, "host_fps": MIN,
             "parity": MIN}


@dataclass(frozen=True)
class Figure:
    """One number about a model and how it was obtained."""

    value: float
    how: str  # e.g. "model_int8.tflite 1258.6 KB", "measured in TFLite Micro", "2 x 8.4 M MACs / flops_per_sec"
    measured: bool = False


@dataclass(frozen=True)
class Figures:
    """What is known about one model. `storage_kb` is the model alone: the verdict adds `runtime_kb`."""

    storage_kb: Figure | None = None
    ram_kb: Figure | None = None
    latency_ms: Figure | None = None  # on the target
    accuracy: Figure | None = None
    host_fps: Figure | None = None


@dataclass(frozen=True)
class Line:
    constraint: str
    value: float | None
    limit: float
    passed: bool | None  # None: nothing to judge (the figure is unknown)
    margin: float | None  # share of the limit to spare (negative: missed by)
    gating: bool
    note: str
    predicted: float | None = None
    predicted_note: str = ""
    measured: bool = False
    model: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Line:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def tally(lines) -> tuple[bool, list[str]]:
    """(whether the budget is met, the gating lines that keep it from being met) of Lines or their dicts. The one
    rule for a gating line with no verdict (its figure is unknown): the budget is not shown to be met, so it counts
    as failing (and is named)."""
    rows = [ln.to_dict() if isinstance(ln, Line) else ln for ln in lines]
    failing = [ln["constraint"] for ln in rows if ln["gating"] and ln["passed"] is not True]
    return not failing, failing


@dataclass(frozen=True)
class Verdict:
    lines: tuple[Line, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return tally(self.lines)[0]

    @property
    def failing(self) -> list[str]:
        return tally(self.lines)[1]

    def line(self, constraint: str) -> Line | None:
        return next((ln for ln in self.lines if ln.constraint == constraint), None)

    def reasons(self) -> list[dict]:
        """Failing gating lines as {constraint, value, limit} (select's rejection reasons)."""
        return [{"constraint": ln.constraint, "value": ln.value, "limit": ln.limit}
                for ln in self.lines if ln.gating and ln.passed is False]

    def to_dict(self) -> dict:
        return {"passed": self.passed, "failing": self.failing, "lines": [ln.to_dict() for ln in self.lines]}


MISSING = {"min_accuracy": "not measured: needs labelled images (--data)",
           "ram_kb": "not known for this model (no reference network, not run in TFLite Micro)",
           "target_fps": "not known: no MAC count or latency profile prediction for this model"}


def gap(constraint: str, value: float, limit: float) -> float:
    """How far `value` is from meeting `limit`, relative to the limit (0 when it meets it)."""
    if meets(constraint, value, limit):
        return 0.0
    return abs(value - limit) / limit if limit else math.inf


def relaxation(constraint: str, value: float) -> tuple[str, float]:
    """The budget change that admits `value` for `constraint`, in words and as the new limit (rounded the safe way:
    a ceiling is raised to the next whole KB, a floor lowered to the shown precision)."""
    if DIRECTION[constraint] == MAX:
        new = math.ceil(round(value, 6))
        return f"raise {constraint} to {new}", new
    if constraint == "min_accuracy":
        new = math.floor(round(value * 1000, 6)) / 1000
        return f"lower min_accuracy to {new:.3f}", new
    new = math.floor(round(value * 100, 6)) / 100
    return f"lower {constraint} to {new:g}", new


def margin(constraint: str, value: float, limit: float) -> float | None:
    if not limit:
        return None
    return (limit - value) / limit if DIRECTION[constraint] == MAX else (value - limit) / limit


def meets(constraint: str, value: float, limit: float) -> bool:
    """Whether `value` meets the budget's `limit` for `constraint` (at most, or at least)."""
    return value <= limit if DIRECTION[constraint] == MAX else value >= limit


def line(constraint: str, measured: Figure | None, limit: float, predicted: Figure | None = None,
         gating: bool = True, add: float = 0.0, add_note: str = "", model: str | None = None,
         transform=None) -> Line:
    """One budget line. The judged value is the measured figure when there is one, else the predicted one.
    `add` is added to both (runtime_kb to a file size); `transform` maps a figure to the line's unit."""
    conv = transform or (lambda v: v)
    fig = measured or predicted
    pred = None if predicted is None else round(conv(predicted.value) + add, 4)
    pred_note = "" if predicted is None else predicted.how
    if fig is None:
        why = MISSING.get(constraint, "not measurable for this model")
        return Line(constraint, None, limit, None, None, False, why, pred, pred_note, model=model)
    value = conv(fig.value) + add
    passed = meets(constraint, value, limit)
    m = margin(constraint, value, limit)
    return Line(constraint, round(value, 4), limit, passed, None if m is None else round(m, 4), gating,
                fig.how + add_note, pred, pred_note, fig.measured and measured is not None, model)


def _fps(latency_ms: float) -> float:
    return 1000.0 / latency_ms if latency_ms > 0 else float("inf")


def judge(budget: Budget, measured: Figures, predicted: Figures | None = None, host_is_target: bool = False,
          model: str | None = None, with_accuracy: bool = True, with_host: bool = True) -> Verdict:
    """Every line of `budget` for one model. `measured` holds what was measured on the model (or, for
    select, the predictions themselves); `predicted` what was predicted before the model existed."""
    p = predicted or Figures()
    runtime = budget.runtime_kb
    out = [line("storage_kb", measured.storage_kb, budget.storage_kb, p.storage_kb, add=runtime,
                add_note=f" + runtime {runtime:g} KB" if runtime else "", model=model)]
    if budget.ram_kb is not None:
        out.append(line("ram_kb", measured.ram_kb, budget.ram_kb, p.ram_kb, model=model))
    out.append(line("target_fps", measured.latency_ms, budget.target_fps, p.latency_ms, model=model,
                    transform=_fps))
    if with_accuracy:
        out.append(line("min_accuracy", measured.accuracy, budget.min_accuracy, p.accuracy, model=model))
    if with_host:
        host = line("host_fps", measured.host_fps, budget.target_fps, model=model, gating=host_is_target)
        if not host_is_target and host.passed is not None:
            host = Line(**{**host.to_dict(), "note": host.note + "; informational: this host is not the target"})
        out.append(host)
    return Verdict(tuple(out))


def parity_line(agreement: float, need: float, passed: bool, note: str, model: str | None = None) -> Line:
    """Export parity (not a budget key): the lowest top-1 agreement against the strictest floor; it passes
    only when every artifact passed its own tolerances."""
    base = line("parity", Figure(agreement, note, measured=True), need, model=model)
    return Line(**{**base.to_dict(), "passed": passed})
