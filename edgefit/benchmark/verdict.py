"""Budget verdicts: one line per constraint with value, limit, pass/fail and margin."""
from __future__ import annotations

from typing import Optional

from ..budget import Budget

PRECISION_NAMES = {"fp32": "float32", "fp16": "float16", "int8": "int8"}


def budget_line(constraint: str, value: Optional[float], limit: float, ok_if: str, gating: bool = True,
                note: str = "") -> dict:
    if value is None:
        return {"constraint": constraint, "value": None, "limit": limit, "passed": None, "margin": None,
                "gating": False, "note": note or "not measurable for this model"}
    passed = value <= limit if ok_if == "max" else value >= limit
    margin = None if not limit else (limit - value) / limit if ok_if == "max" else (value - limit) / limit
    return {"constraint": constraint, "value": round(value, 4), "limit": limit, "passed": passed,
            "margin": None if margin is None else round(margin, 4), "gating": gating, "note": note}


def lines_for(row: dict, unit, budget: Budget, macs: Optional[int], ram_kb: Optional[float],
              accuracy: Optional[float], host_is_target: bool) -> list[dict]:
    out = [budget_line("storage_kb", row["size_bytes"] / 1024 + budget.runtime_kb, budget.storage_kb, "max",
                 note=f"file {row['size_bytes'] / 1024:.1f} KB + runtime {budget.runtime_kb:g} KB")]
    if budget.ram_kb is not None:
        out.append(budget_line("ram_kb", ram_kb, budget.ram_kb, "max",
                         note="peak activation memory from tensor liveness (cost model)"))
    target_fps = budget.flops_per_sec / (2 * macs) if macs else None
    out.append(budget_line("target_fps", target_fps, budget.target_fps, "min",
                     note=f"predicted on the target: flops_per_sec / (2 x {macs or '?'} MACs)"))
    host = row.get("fps")
    out.append(budget_line("host_fps", host, budget.target_fps, "min", gating=host_is_target,
                     note="measured on this host" + ("" if host_is_target else " (informational: not the target)")))
    out.append(budget_line("min_accuracy", accuracy, budget.min_accuracy, "min",
                     note="top-1 of this artifact on --data" if accuracy is not None else "needs --data"))
    return out


def verdict(results: list[dict]) -> dict:
    lines = [dict(line, model=r["model"]) for r in results for line in r.get("budget_lines", [])]
    return {"passed": all(ln["passed"] for ln in lines if ln["gating"]), "lines": lines}
