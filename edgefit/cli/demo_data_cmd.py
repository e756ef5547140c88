"""`edgefit demo-data`: write a procedurally generated labelled image set."""
from __future__ import annotations

import click


@click.command("demo-data")
@click.argument("out", type=click.Path())
@click.option("--classes", type=int, default=10, show_default=True, help="Number of classes (2-36).")
@click.option("--per-class", type=int, default=200, show_default=True, help="Images per class.")
@click.option("--size", type=int, default=96, show_default=True, help="Image side in pixels.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--kind", type=click.Choice(["shapes", "orientation"]), default="shapes", show_default=True,
              help="shapes: coloured shapes and textures; orientation: grayscale clock hands in up to 12 "
                   "directions (a hard case: flips turn one class into another).")
def demo_data_cmd(out, classes, per_class, size, seed, kind):
    """Write OUT/<class>/<n>.png: shapes and textures with random colours, rotation, scale, clutter
    and noise (or, --kind orientation, clock hands); offline, in seconds. OUT must not exist or be empty.

    \b
    Example:
      edgefit demo-data demo --classes 10 --per-class 200 --size 96
      edgefit demo-data hands --kind orientation --classes 10 --per-class 140 --size 32
    """
    from ..data.demo import make_demo_data

    info = make_demo_data(out, classes=classes, per_class=per_class, size=size, seed=seed, kind=kind)
    click.echo(f"wrote {classes} x {per_class} images of {size} px to {info['out']}: {', '.join(info['classes'])}")
