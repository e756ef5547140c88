"""`edgefit budget validate`: check a budget file and show what edgefit reads from it."""
from __future__ import annotations

import click

from .common import emit_json


@click.group()
def budget():
    """Work with budget files.

    \b
    Example:
      edgefit budget validate budgets/raspberry-pi-4.yaml
    """


@budget.command("validate")
@click.argument("budget_file", metavar="BUDGET")
@click.option("--json", "as_json", is_flag=True, help="Print the parsed budget as JSON only.")
def validate(budget_file: str, as_json: bool):
    """Validate BUDGET and print the values edgefit will use (exit 0 valid, 2 invalid).

    \b
    Example:
      edgefit budget validate budgets/soc-x.yaml --json
    """
    from ..budget import load_budget
    from ..select import accuracy_note

    b = load_budget(budget_file)
    if as_json:
        emit_json({**b.model_dump(), "max_macs_per_frame": b.max_macs_per_frame})
        return
    ram = f"{b.ram_kb:g} KB" if b.ram_kb is not None else "not constrained"
    click.echo(f"{budget_file}: valid budget '{b.name}'")
    click.echo(f"  compute      {b.flops_per_sec:.4g} FLOP/s effective"
               + (f" (peak {b.peak_flops_per_sec:.4g} x efficiency {b.efficiency:g})" if b.peak_flops_per_sec else ""))
    click.echo(f"  per frame    at most {b.max_macs_per_frame / 1e6:.1f} M MACs for {b.target_fps:g} FPS")
    click.echo(f"  storage      {b.storage_kb:g} KB (runtime {b.runtime_kb:g} KB counted against it)")
    click.echo(f"  ram          {ram}")
    click.echo(f"  accuracy     {accuracy_note(b)}")
    click.echo(f"  precision    {b.precision}")
    click.echo("  classes      " + (f"{b.num_classes} (stated)" if "num_classes" in b.model_fields_set else
                                   "none stated: a build takes them from your data; select costs ImageNet's 1000"))
    if b.runtime:
        click.echo(f"  runtime      {b.runtime}: {b.io} model input/output, RAM = the arena it allocates")
