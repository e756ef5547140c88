"""`edgefit select`: which zoo variant fits a budget."""
from __future__ import annotations

import click

from .common import emit_json, fmt_m, stdout_console, zoo_progress


@click.command("select")
@click.argument("budget_file", metavar="BUDGET")
@click.option("--num-classes", type=int, default=None, help="Override the budget's num_classes.")
@click.option("--objective", default="accuracy", show_default=True,
              help="Rank feasible variants by accuracy | latency | size.")
@click.option("--family", default=None, help="Only consider this family, e.g. v2 or mobilenet_v3_small.")
@click.option("--top", "top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Feasible variants shown in the table.")
@click.option("--show-rejected", is_flag=True, help="List every rejected variant with its violated lines.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only (chosen, feasible, rejected, nearest_miss).")
def select_cmd(budget_file, num_classes, objective, family, top, show_rejected, as_json):
    """Pick the zoo variant that fits BUDGET (exit 0 chosen, 1 nothing fits, 2 bad input).

    \b
    Example:
      edgefit select budgets/pi-zero-2w.yaml
      edgefit select budgets/raspberry-pi-4.yaml --objective latency --top 5
    """
    from ..budget import load_budget
    from ..select import select

    budget = load_budget(budget_file)
    with zoo_progress() as progress:
        result = select(budget, objective=objective, num_classes=num_classes, family=family, progress=progress)
    if as_json:
        emit_json(result.to_dict())
    else:
        _render(result, top, show_rejected)
    if result.chosen is None:
        raise SystemExit(1)


def _render(result, top: int, show_rejected: bool) -> None:
    from rich.table import Table

    from ..select import accuracy_note, latency_basis

    b = result.budget
    out = stdout_console()
    ram = f", RAM <= {b.ram_kb:g} KB" if b.ram_kb is not None else ""
    out.print(f"[bold]{b.name}[/]: {b.flops_per_sec / 1e6:,.0f} MFLOP/s effective, storage <= {b.storage_kb:g} KB"
              + (f" (runtime {b.runtime_kb:g} KB)" if b.runtime_kb else "")
              + f"{ram}, >= {b.target_fps:g} FPS, {b.precision}, {b.num_classes} classes"
              + ("" if "num_classes" in b.model_fields_set else " (none stated: ImageNet's 1000)")
              + f"  ->  at most {b.max_macs_per_frame / 1e6:.1f} M MACs per frame")
    out.print(f"min_accuracy: {accuracy_note(b)}")
    feasible = result.feasible
    if feasible:
        out.print(f"predicted, not measured: ms and FPS on the target from {latency_basis(b)}; size and RAM from the "
                  "network; top-1 is the published ImageNet figure")
        t = Table(title=f"{len(feasible)} of {len(result.candidates)} variants fit "
                  f"(ranked by {result.objective}; P = on the accuracy-latency Pareto front)", title_justify="left")
        for col in ["#", "variant", "M MACs", "M params", "size KB", "RAM KB", "ms", "FPS", "top-1", "P"]:
            t.add_column(col, justify="left" if col == "variant" else "right")
        for i, c in enumerate(feasible[:top], 1):
            t.add_row(str(i), c.variant.name, fmt_m(c.cost.macs), fmt_m(c.cost.params, 2), f"{c.cost.size_kb:,.0f}",
                      f"{c.cost.peak_ram_kb:,.0f}", f"{c.cost.latency_ms:.1f}", f"{c.cost.fps:.1f}",
                      f"{c.accuracy_prior:.3f}" + ("*" if c.variant.accuracy_estimated else ""),
                      "P" if c.pareto else "")
        out.print(t)
        if len(feasible) > top:
            out.print(f"... {len(feasible) - top} more feasible (--top N to show them)")
        front = [c for c in feasible if c.pareto]
        out.print("Pareto front (accuracy vs latency): "
                  + ", ".join(f"{c.variant.name} ({c.accuracy_prior:.3f}, {c.cost.latency_ms:.1f} ms)"
                              for c in sorted(front, key=lambda c: c.cost.latency_ms)))
        chosen = result.chosen
        out.print(f"[bold green]chosen:[/] {chosen.variant.name}  (top-1 prior {chosen.accuracy_prior:.3f} "
                  f"from {chosen.variant.accuracy_float_source}; pretrained: {chosen.variant.weights or 'none'})")
    else:
        out.print(f"[bold red]nothing fits:[/] all {len(result.candidates)} variants violate at least one line")
    rejected = result.rejected
    counts: dict[str, int] = {}
    for c in rejected:
        for r in c.reasons:
            counts[r["constraint"]] = counts.get(r["constraint"], 0) + 1
    if rejected:
        out.print(f"{len(rejected)} rejected; violations by line: "
                  + ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])))
    miss = result.nearest_miss
    if miss:
        lines = "; ".join(f"{r['constraint']} {r['value']:g} vs limit {r['limit']:g}" for r in miss["reasons"])
        out.print(f"[bold]nearest miss:[/] {miss['name']} ({lines})")
        out.print(f"[bold]smallest relaxation:[/] {miss['relaxation']}")
    if show_rejected and rejected:
        t = Table(title="rejected", title_justify="left")
        t.add_column("variant")
        t.add_column("violated lines (value vs limit)")
        for c in rejected:
            why = "; ".join(f"{r['constraint']} {r['value']:g} vs {r['limit']:g}" for r in c.reasons)
            t.add_row(c.variant.name, why)
        out.print(t)
