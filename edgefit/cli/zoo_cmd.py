"""`edgefit zoo`: the variant catalog with costs computed from the real networks."""
from __future__ import annotations

import click

from .common import emit_json, fmt_m, stdout_console, zoo_progress


@click.command("zoo")
@click.option("--num-classes", type=click.IntRange(min=2), default=1000, show_default=True,
              help="Classifier size the MACs and parameters are computed for.")
@click.option("--family", default=None, help="Only this family, e.g. v2, v3, mobilenet_v3_small.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list only.")
def zoo_cmd(num_classes: int, family: str | None, as_json: bool):
    """List the zoo: width x resolution variants, their MACs, parameters and accuracy priors.

    \b
    Example:
      edgefit zoo --family v2 --num-classes 10
    """
    from .. import zoo
    from ..costs import zoo_stats

    chosen = zoo.filter_family(family)
    with zoo_progress() as progress:
        stats = zoo_stats(num_classes, progress=progress)
    rows = []
    for v in chosen:
        s = stats[v.name]
        rows.append({"name": v.name, "family": v.family, "width": v.width, "resolution": v.resolution,
                     "macs": s["macs"], "params": s["params"], "accuracy_prior": v.accuracy_float,
                     "accuracy_prior_int8": v.accuracy_int8, "accuracy_prior_source": v.accuracy_float_source,
                     "accuracy_prior_estimated": v.accuracy_estimated, "weights": v.weights})
    if as_json:
        emit_json(rows)
        return
    from rich.table import Table

    t = Table(title=f"edgefit zoo: {len(rows)} variants, {num_classes} classes", title_justify="left")
    for col, just in [("variant", "left"), ("M MACs", "right"), ("M params", "right"), ("top-1", "right"),
                      ("8-bit", "right"), ("prior source", "left"), ("pretrained (timm)", "left")]:
        t.add_column(col, justify=just)
    for r in rows:
        t.add_row(r["name"], fmt_m(r["macs"]), fmt_m(r["params"], 2),
                  f"{r['accuracy_prior']:.3f}" + ("*" if r["accuracy_prior_estimated"] else ""),
                  f"{r['accuracy_prior_int8']:.3f}" if r["accuracy_prior_int8"] is not None else "-",
                  r["accuracy_prior_source"].split(" ")[0], r["weights"] or "none")
    out = stdout_console()
    out.print(t)
    out.print("* estimated prior (no published figure at this resolution); sources: model_zoo/catalog.yaml")
