"""`edgefit doctor`: look at a folder of labelled images before training on it."""
from __future__ import annotations

import sys

import click

from .common import emit_json

MARK = {"error": "ERROR", "warning": "warning", "info": "info"}


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        print(f"\rinspecting images: {done}/{total}", end="", file=sys.stderr, flush=True)
    elif done == 0:
        print(f"edgefit: inspecting {total} files (cached afterwards)", file=sys.stderr, flush=True)


@click.command("doctor")
@click.argument("data", type=click.Path())
@click.option("--seed", type=int, default=0, show_default=True, help="The split `edgefit train` would make.")
@click.option("--val-fraction", type=float, default=0.2, show_default=True, help="For an unsplit folder.")
@click.option("--test-fraction", type=float, default=0.0, show_default=True, help="For an unsplit folder.")
@click.option("--resolution", type=int, default=96, show_default=True,
              help="Network input in px: smaller images are reported as upsampled.")
@click.option("--out", default=None, help="Write doctor.json, samples.png and augmented.png here.")
@click.option("--json", "as_json", is_flag=True, help="Print the edgefit-doctor/1 JSON only.")
def doctor_cmd(data, seed, val_fraction, test_fraction, resolution, out, as_json):
    """Check DATA for unreadable files, duplicates, label conflicts, leaks between the splits, class
    imbalance, small classes and images, mixed colour; draw contact sheets with --out.

    Exit 0 no error finding, 1 an error finding (a leak or a label conflict, a class that cannot be
    split), 2 bad input.

    \b
    Example:
      edgefit doctor runs/demo-data --out runs/doctor
    """
    from ..doctor import doctor

    report = doctor(data, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, out=out,
                    resolution=resolution, progress=None if as_json else _progress)
    if sys.stderr.isatty() and not as_json:
        print(file=sys.stderr)
    if as_json:
        emit_json(report.to_dict())
    else:
        classes = report.classes
        click.echo(f"{report.root}: {report.images} images in {len(classes)} classes "
                   f"({', '.join(f'{k} {v}' for k, v in report.splits.items() if v)}; split "
                   f"{report.split['mode']}), {report.seconds:.1f} s ({report.cached} cached)")
        if not report.findings:
            click.echo("no findings")
        for f in report.findings:
            click.echo(f"{MARK[f.severity]:>7} {f.code}: {f.message}")
            shown = f.groups[:3] if f.groups else [[x] for x in f.files[:3]]
            for g in shown:
                click.echo("          " + "  =  ".join(g[:4]) + (" ..." if len(g) > 4 else ""))
            if len(f.groups or f.files) > 3:
                click.echo(f"          ... {len(f.groups or f.files) - 3} more (--json lists all)")
        if out:
            click.echo(f"wrote {out}/doctor.json" + "".join(f", {out}/{s}" for s in report.sheets))
    if not report.passed:
        raise SystemExit(1)
