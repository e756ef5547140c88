"""Selection: test every zoo variant against every budget constraint and pick by objective."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import zoo
from .budget import Budget
from .costs import Cost, cache_path, cost, zoo_stats
from .errors import BadInput, did_you_mean
from .verdict import Figure, gap, judge, relaxation

OBJECTIVES = {
    "accuracy": lambda c: (-c.accuracy_prior, c.cost.latency_ms, c.cost.size_kb),
    "latency": lambda c: (c.cost.latency_ms, -c.accuracy_prior, c.cost.size_kb),
    "size": lambda c: (c.cost.size_kb, -c.accuracy_prior, c.cost.latency_ms),
}


@dataclass
class Candidate:
    variant: zoo.Variant
    cost: Cost
    reasons: list[dict] = field(default_factory=list)
    pareto: bool = False

    @property
    def accuracy_prior(self) -> float:
        return self.variant.accuracy_float

    @property
    def feasible(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict:
        v, c = self.variant, self.cost
        return {
            "name": v.name, "family": v.family, "width": v.width, "resolution": v.resolution,
            "macs": c.macs, "params": c.params, "size_kb": round(c.size_kb, 1),
            "peak_ram_kb": round(c.peak_ram_kb, 1), "latency_ms": round(c.latency_ms, 3), "fps": round(c.fps, 3),
            "latency_method": c.latency_method, "accuracy_prior": v.accuracy_float,
            "accuracy_prior_source": v.accuracy_float_source,
            "accuracy_prior_estimated": v.accuracy_estimated, "accuracy_prior_int8": v.accuracy_int8,
            "weights": v.weights, "pareto": self.pareto,
        }

    def with_note(self, budget: Budget) -> dict:
        return {**self.to_dict(), "min_accuracy": accuracy_note(budget, self.accuracy_prior)}


@dataclass
class Selection:
    budget: Budget
    objective: str
    candidates: list[Candidate]
    nearest_miss: dict | None
    cache: str

    @property
    def feasible(self) -> list[Candidate]:
        key = OBJECTIVES[self.objective]
        return sorted((c for c in self.candidates if c.feasible), key=key)

    @property
    def rejected(self) -> list[Candidate]:
        return [c for c in self.candidates if not c.feasible]

    @property
    def chosen(self) -> Candidate | None:
        feasible = self.feasible
        return feasible[0] if feasible else None

    def to_dict(self) -> dict:
        chosen = self.chosen
        return {
            "budget": self.budget.model_dump(),
            "objective": self.objective,
            "num_classes": self.budget.num_classes,
            "chosen": chosen.with_note(self.budget) if chosen else None,
            "feasible": [c.with_note(self.budget) for c in self.feasible],
            "min_accuracy": accuracy_note(self.budget),
            "pareto": [c.variant.name for c in self.feasible if c.pareto],
            "rejected": [{"name": c.variant.name, "reasons": c.reasons} for c in self.rejected],
            "nearest_miss": self.nearest_miss,
            "cost_model": {
                "latency": latency_basis(self.budget) + " (each candidate's latency_method says which applied)",
                "cache": self.cache,
                "accuracy_prior": "published ImageNet float top-1 of the architecture (estimates marked)",
            },
        }


def prior_figure(variant: zoo.Variant) -> Figure:
    return Figure(variant.accuracy_float, f"published ImageNet top-1 prior ({variant.accuracy_float_source})")


def check(variant: zoo.Variant, c: Cost, budget: Budget, with_accuracy: bool) -> list[dict]:
    """Every violated constraint as {constraint, value, limit}, judged by the one verdict; the accuracy line only
    `with_accuracy` (min_accuracy is ImageNet top-1: the published prior is judged)."""
    return judge(budget, c.figures(prior_figure(variant)), with_host=False, with_accuracy=with_accuracy).reasons()


def latency_basis(budget: Budget) -> str:
    """What select predicts the target's latency from, in words."""
    if budget.latency_profile:
        return "fitted " + Path(budget.latency_profile).name
    return "per op class: 2 x MACs / op_flops_per_sec" if budget.op_flops_per_sec else "2 x MACs / flops_per_sec"


def accuracy_note(budget: Budget, prior: float | None = None) -> str:
    """How select treats min_accuracy, in words (for a candidate when `prior` is given)."""
    if budget.accuracy_is_imagenet:
        return (f"ImageNet top-1 >= {budget.min_accuracy:.3f} (accuracy_on: imagenet): judged on the published prior"
                + ("" if prior is None else f" {prior:.3f}"))
    return (f"top-1 >= {budget.min_accuracy:.3f} on your data: judged after training on your held-out images"
            + (" (the ImageNet prior only ranks)" if prior is None else f" (ImageNet prior {prior:.3f} for ranking)"))


def nearest_miss(rejected: list[Candidate], objective: str) -> dict | None:
    """The rejected variant admitted by the smallest relaxation: fewest violated constraints first,
    then the smallest relative gap, then the objective's order."""
    if not rejected:
        return None
    order = OBJECTIVES[objective]
    best = min(rejected, key=lambda c: (len(c.reasons), max(gap(r["constraint"], r["value"], r["limit"])
                                                            for r in c.reasons), order(c)))
    steps = [relaxation(r["constraint"], r["value"]) for r in best.reasons]
    return {
        "name": best.variant.name,
        "reasons": best.reasons,
        "relaxation": " and ".join(text for text, _ in steps),
        "relaxations": [{"constraint": r["constraint"], "to": new}
                        for r, (_, new) in zip(best.reasons, steps, strict=True)],
    }


def _mark_pareto(feasible: list[Candidate]) -> None:
    for c in feasible:
        c.pareto = not any(
            o.accuracy_prior >= c.accuracy_prior and o.cost.latency_ms <= c.cost.latency_ms
            and (o.accuracy_prior > c.accuracy_prior or o.cost.latency_ms < c.cost.latency_ms)
            for o in feasible
        )


def select(budget: Budget, objective: str = "accuracy", num_classes: int | None = None,
           family: str | None = None, progress: Callable[[int, int, str], None] | None = None,
           with_accuracy: bool | None = None) -> Selection:
    """Rank the zoo against `budget`. `num_classes` overrides the budget's. The accuracy line is judged on the
    ImageNet prior only when the budget says min_accuracy is ImageNet top-1 (`accuracy_on: imagenet`), or when
    `with_accuracy` says so; otherwise the prior only ranks (the task's accuracy is measured after training)."""
    if objective not in OBJECTIVES:
        raise BadInput(f"unknown objective '{objective}'{did_you_mean(objective, OBJECTIVES)}; "
                       f"choose one of {', '.join(OBJECTIVES)}")
    if num_classes is not None:
        if num_classes < 2:
            raise BadInput(f"--num-classes must be 2 or more, got {num_classes}")
        budget = budget.with_num_classes(num_classes)
    stats = zoo_stats(budget.num_classes, progress=progress)
    candidates = []
    judged = budget.accuracy_is_imagenet if with_accuracy is None else with_accuracy
    pool = zoo.filter_family(family)
    graphs = _graphs(budget, pool, progress)
    for v in pool:
        c = cost(stats[v.name], budget, graph=graphs.get(v.name))
        candidates.append(Candidate(v, c, check(v, c, budget, judged)))
    _mark_pareto([c for c in candidates if c.feasible])
    rejected = [c for c in candidates if not c.feasible]
    miss = nearest_miss(rejected, objective) if len(rejected) == len(candidates) else None
    return Selection(budget, objective, candidates, miss, str(cache_path(budget.num_classes)))


def _graphs(budget: Budget, pool, progress) -> dict:
    """Each variant's kernel list for the budget's latency profile, at the precision the budget deploys."""
    if not budget.latency_profile:
        return {}
    from .benchmark.latency_profile import load_profile, zoo_graphs
    from .precision import Precision

    return zoo_graphs(pool, budget.num_classes, Precision.parse(budget.precision).value,
                      load_profile(budget.latency_profile), progress)
