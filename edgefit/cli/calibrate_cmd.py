"""`edgefit calibrate`: measure this machine's effective FLOP/s for a budget file."""
from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("calibrate")
@click.option("--runtime", "runtimes", default="onnxruntime", show_default=True,
              help="Comma list of onnxruntime, torch, litert.")
@click.option("--threads", type=int, default=0, show_default=True, help="0: each runtime's default.")
@click.option("--min-seconds", type=float, default=1.0, show_default=True, help="Timing per network.")
@click.option("--out", default=None, help="Write a budget snippet (flops_per_sec, op_flops_per_sec) here.")
@click.option("--profile", "profile_out", default=None, metavar="PROFILE",
              help="Also sample kernels (onnxruntime or litert), fit a latency profile and write it here (JSON); "
                   "a budget names it with latency_profile.")
@click.option("--precision", default="fp32", show_default=True, help="With --profile: fp32 or int8 graphs.")
@click.option("--budget-minutes", type=float, default=10.0, show_default=True,
              help="With --profile: sampling stops when this is nearly spent.")
@click.option("--exclude-variants", default="", metavar="A,B,...",
              help="With --profile: zoo variants not to sample (to hold them out of a validation).")
@click.option("--from", "from_results", default=None, metavar="RESULTS.json",
              help="Fit the --profile from what probe.py measured on the device (its calibration set) instead of "
                   "measuring here; the runtime, threads and precision are the results'. With --out, the budget "
                   "line naming the profile.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON only.")
def calibrate_cmd(runtimes, threads, min_seconds, out, profile_out, precision, budget_minutes,
                  exclude_variants, from_results, as_json):
    """Time reference networks of known MACs and report effective FLOP/s per runtime and op class.

    Run it on the target device; paste the snippet into the device's budget file. A device that cannot hold
    edgefit: `edgefit probe --calibration-set small`, probe.py there, then `calibrate --from` here.

    \b
    Example:
      edgefit calibrate --runtime onnxruntime,litert --threads 4 --out budget-snippet.yaml
      edgefit calibrate --from results.json --profile pi-zero.json
    """
    from ..benchmark.calibrate import calibrate, snippet
    from ..fsutil import atomic_write_text

    if from_results:
        return _from_results(from_results, profile_out, out, as_json)

    rts = [r.strip() for r in runtimes.split(",") if r.strip()]
    profile = None
    if profile_out:
        profile = _profile(rts, threads, precision, budget_minutes, exclude_variants, profile_out, as_json)
    report = calibrate(rts, threads=threads, min_seconds=min_seconds)
    if profile is not None:
        report["latency_profile"] = {"file": profile_out, **{k: profile[k] for k in (
            "runtime", "precision", "threads", "networks", "samples", "fit_quality", "wall_s")}}
    if out:
        text = snippet(report, rts[0])
        if profile_out:
            import os

            rel = os.path.relpath(Path(profile_out).resolve(), Path(out).resolve().parent)
            text += f"latency_profile: {rel}  # fitted kernel latency model; flops_per_sec is the fallback\n"
        atomic_write_text(out, text)
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
    if profile is not None:
        q = profile["fit_quality"]
        click.echo(f"latency profile {profile_out}: {len(profile['networks'])} networks, {profile['samples']} kernel "
                   f"samples in {profile['wall_s']:.0f} s; held-out networks within 10%: "
                   f"{q['share_within_10pct']:.0%}, median error {q['median_abs_error']:.1%}")
    if out:
        click.echo(f"wrote {out}")


def _profile(rts, threads, precision, budget_minutes, exclude, out, quiet) -> dict:
    from ..benchmark.latency_profile import calibrate_profile
    from ..errors import BadInput
    from ..fsutil import atomic_write_json

    if len(rts) != 1:
        raise BadInput("--profile: give one --runtime (a profile is for one runtime)")
    if budget_minutes <= 0:
        raise BadInput(f"--budget-minutes must be more than 0, got {budget_minutes}")

    def progress(i, n, name):
        if not quiet:
            click.echo(f"  sampled {name} ({i}/{n})", err=True)

    names = tuple(v.strip() for v in exclude.split(",") if v.strip())
    profile = calibrate_profile(rts[0], precision, threads or 1, budget_minutes, names, progress)
    atomic_write_json(out, profile)
    return profile


def _from_results(path, profile_out, out, as_json) -> None:
    from ..benchmark.latency_profile import profile_from_results
    from ..errors import BadInput
    from ..fsutil import atomic_write_json, atomic_write_text

    if not profile_out:
        raise BadInput("--from fits a latency profile: give --profile FILE to write it")
    profile = profile_from_results(path)
    atomic_write_json(profile_out, profile)
    if out:
        import os

        rel = os.path.relpath(Path(profile_out).resolve(), Path(out).resolve().parent)
        atomic_write_text(out, f"# measured on {profile['device'].get('cpu')} by probe.py ({Path(path).name}), "
                               f"{profile['runtime']} {profile['precision']}, {profile['threads']} thread(s)\n"
                               f"latency_profile: {rel}  # fitted kernel latency model of the device\n")
    if as_json:
        click.echo(json.dumps({k: v for k, v in profile.items() if k != "model"}, indent=2))
        return
    q = profile["fit_quality"]
    click.echo(f"latency profile {profile_out} ({profile['runtime']} {profile['precision']}, {profile['threads']} "
               f"thread(s)) of {profile['device'].get('cpu')}: {len(profile['networks'])} networks, "
               f"{profile['samples']} kernel samples measured there; held-out networks within 10%: "
               f"{q['share_within_10pct']:.0%}, median error {q['median_abs_error']:.1%}")
    click.echo(f"add to the device's budget: latency_profile: {profile_out}")
