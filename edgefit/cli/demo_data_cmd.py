"""`edgefit demo-data`: write a procedurally generated labelled image set."""
from __future__ import annotations

import click


@click.command("demo-data")
@click.argument("out", type=click.Path())
@click.option("--classes", type=int, default=10, show_default=True, help="Number of classes (2-36).")
@click.option("--per-class", type=int, default=200, show_default=True, help="Images per class.")
@click.option("--size", type=int, default=96, show_default=True, help="Image side in pixels.")
@click.option("--seed", type=int, default=0, show_default=True)
def demo_data_cmd(out, classes, per_class, size, seed):
    """Write OUT/<class>/<n>.png: shapes and textures with random colours, rotation, scale, clutter
    and noise; offline, in seconds. OUT must not exist or be empty.

    \b
    Example:
      edgefit demo-data demo --classes 10 --per-class 200 --size 96
    """
    from ..data.demo import make_demo_data

    info = make_demo_data(out, classes=classes, per_class=per_class, size=size, seed=seed)
    click.echo(f"wrote {classes} x {per_class} images of {size} px to {info['out']}: {', '.join(info['classes'])}")
