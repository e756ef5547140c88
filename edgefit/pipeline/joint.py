"""Joint candidates for the build's search: a larger zoo variant pruned until it fits competes with the
narrower variants that fit as they are.

A candidate is (variant, prune ratio, precision). The precision is the budget's (`precision:` names what the
target's runtime runs); the prune ratio is the share of channels removed from every prunable layer of the
starting network before training (`edgefit train --prune`), the smallest on a 0.05 grid whose predicted
cost passes the budget's cost lines. How many channels a ratio removes depends on the architecture only,
not on the weights, so the fit is checked here on an untrained copy and holds for the trained network.

Which variants are offered pruned: those rejected only on lines pruning can move (FPS, storage, RAM), with a
better ImageNet prior than the best variant that fits, needing at most PRUNE_MAX of their channels removed;
the fewest channels removed first, one per architecture (family and width).
"""
from __future__ import annotations

import math

from ..errors import NothingFits

PRUNE_MAX = 0.5  # beyond half of the channels, a pruned network keeps little of what made it the better one
PRUNABLE = ("target_fps", "storage_kb", "ram_kb")
GRID = 0.05


def candidate_name(variant: str, prune_ratio: float) -> str:
    """The candidate's name in the search (its run directory under search/ and its report row)."""
    return variant if not prune_ratio else f"{variant}.pruned{prune_ratio:g}"


def estimated_ratio(reasons: list[dict]) -> float:
    """A first guess of the channel share to remove: MACs and weights shrink about as (1 - r)^2 (in and out
    channels both go), activations as (1 - r). Only where the exact search starts; never reported."""
    need = 0.0
    for r in reasons:
        value, limit = r["value"], r["limit"]
        if r["constraint"] == "target_fps":
            need = max(need, 1 - math.sqrt(value / limit))
        elif r["constraint"] == "storage_kb":
            need = max(need, 1 - math.sqrt(limit / value))
        else:  # ram_kb
            need = max(need, 1 - limit / value)
    return need


def pruned_candidates(candidates, budget, count: int, progress=None) -> list[dict]:
    """Up to `count` pruned candidates from select's `candidates` (select.Candidate) under `budget` (the cost
    lines only, num_classes set), each as select's candidate dict plus variant and prune_ratio."""
    import torch

    from .. import zoo
    from ..compress import ratio_for_budget
    from ..prune import ROUND_TO

    if count < 1:
        return []
    fits = [c for c in candidates if c.feasible]
    bar = max((c.accuracy_prior for c in fits), default=-1.0)
    eligible = [(estimated_ratio(c.reasons), c) for c in candidates if c.reasons and c.accuracy_prior > bar
                and all(r["constraint"] in PRUNABLE for r in c.reasons)]
    eligible = sorted(((r, c) for r, c in eligible if r <= PRUNE_MAX + 2 * GRID),
                      key=lambda rc: (rc[0], -rc[1].accuracy_prior))
    out, archs, looked = [], set(), 0
    for guess, c in eligible:
        v = c.variant
        if len(out) == count or looked == 2 * count + 2:
            break
        if (v.family, v.width) in archs:
            continue
        looked += 1
        if progress:
            progress(len(out), count, f"pruning {v.name} to fit")
        torch.manual_seed(0)
        model = zoo.build_model(v, budget.num_classes).eval()
        start = max(0.0, math.floor((guess - 2 * GRID) / GRID) * GRID)
        try:
            ratio, tried = ratio_for_budget(model, v.resolution, budget, ROUND_TO, GRID, start=start, most=PRUNE_MAX)
            if ratio == start and start > 0:  # the guess was high: the smallest ratio may lie below it
                ratio, tried = ratio_for_budget(model, v.resolution, budget, ROUND_TO, GRID, most=start)
        except NothingFits:
            continue
        if not ratio:  # passes unpruned after all: not a pruned candidate
            continue
        archs.add((v.family, v.width))
        k = tried[-1]  # the predicted cost of the ratio that passed, as the verdict judged it
        out.append({**c.to_dict(), "name": candidate_name(v.name, ratio), "variant": v.name,
                    "prune_ratio": round(ratio, 4),
                    **{f: k[f] for f in ("macs", "params", "size_kb", "peak_ram_kb", "latency_ms", "fps",
                                         "latency_method")},
                    "accuracy_prior_note": "of the unpruned variant: pruning lowers it by an amount only training on "
                                           "your data measures", "pareto": False})
    return out


def variant_of(candidate: dict) -> tuple[str, float]:
    """(zoo variant, prune ratio) of a candidate dict: select's variants that fit have no prune ratio."""
    return candidate.get("variant", candidate["name"]), candidate.get("prune_ratio", 0.0)
