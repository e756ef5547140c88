"""`edgefit calibrate`: measure this machine's effective FLOP/s for a budget file."""
from __future__ import annotations

import json

import click


@click.command("calibrate")
@click.option("--runtime", "runtimes", default="onnxruntime", show_default=True,
              help="Comma list of onnxruntime, torch, litert.")
@click.option("--threads", type=int, default=0, show_default=True, help="0: each runtime's default.")
@click.option("--min-seconds", type=float, default=1.0, show_default=True, help="Timing per network.")
@click.option("--out", default=None, help="Write a budget snippet (flops_per_sec, op_flops_per_sec) here.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON only.")
def calibrate_cmd(runtimes, threads, min_seconds, out, as_json):
    """Time reference networks of known MACs and report effective FLOP/s per runtime and op class.

    Run it on the target device; paste the snippet into the device's budget file.

    \b
    Example:
      edgefit calibrate --runtime onnxruntime,litert --threads 4 --out budget-snippet.yaml
    """
    from ..benchmark.calibrate import calibrate, snippet
    from ..fsutil import atomic_write_text

    rts = [r.strip() for r in runtimes.split(",") if r.strip()]
    report = calibrate(rts, threads=threads, min_seconds=min_seconds)
    if out:
        atomic_write_text(out, snippet(report, rts[0]))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for rt, r in report["runtimes"].items():
        click.echo(f"{rt}: {r['flops_per_sec'] / 1e9:.2f} GFLOP/s effective (median of reference networks)")
        for name, n in r["networks"].items():
            click.echo(f"  {name:<28} {n['macs'] / 1e6:7.1f} M MACs  {n['p50_ms']:8.2f} ms  "
                       f"{n['flops_per_sec'] / 1e9:6.2f} GFLOP/s")
        for cls, f in r["op_flops_per_sec"].items():
            click.echo(f"  op {cls:<25} {f / 1e9:6.2f} GFLOP/s")
    if out:
        click.echo(f"wrote {out}")
