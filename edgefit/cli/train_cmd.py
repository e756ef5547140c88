"""`edgefit train`: fine-tune a zoo variant on a folder of labelled images."""
from __future__ import annotations

import json

import click

from ..train.config import MAX_PRUNE, STRATEGIES


@click.command("train")
@click.option("--variant", required=True, help="Zoo variant, e.g. mobilenet_v2_0.35_96 (`edgefit zoo`).")
@click.option("--data", required=True, type=click.Path(), help="Folder of class folders, or train/ val/ [test/].")
@click.option("--weights", default=None,
              help="imagenet | none | PATH (.safetensors or .pt state dict). Default: imagenet where the zoo "
                   "has weights, else none.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="auto", show_default=True,
              help="head: classifier only; partial: last stages; full: everything; auto: by images per class.")
@click.option("--epochs", type=click.IntRange(min=1), default=15, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lr", type=float, default=None,
              help="Peak learning rate [from scratch: a learning-rate range test picks it; fine-tuning: AdamW 1e-3].")
@click.option("--optimizer", type=click.Choice(["auto", "adamw", "sgd"]), default="auto", show_default=True,
              help="auto: SGD with Nesterov momentum from scratch, AdamW when fine-tuning pretrained weights.")
@click.option("--patience", type=click.IntRange(min=1), default=5, show_default=True,
              help="Early stop after this many epochs without a better validation top-1.")
@click.option("--seed", type=int, default=0, show_default=True, help="Split, order and augmentation seed.")
@click.option("--val-fraction", type=float, default=0.2, show_default=True, help="For an unsplit folder.")
@click.option("--test-fraction", type=float, default=0.0, show_default=True, help="Held-out test share.")
@click.option("--flip", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="Horizontal flips; auto: on only if a flip keeps the classes (checked on validation images).")
@click.option("--no-flip", is_flag=True, help="Same as --flip off (orientation-sensitive classes).")
@click.option("--crop", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="The random resized crop's scale: on: wide (half the image's area to all of it); off: mild "
                   "(0.85 to 1); auto: wide, narrowed if the model still does much worse on such crops than on the "
                   "whole image (checked on validation images).")
@click.option("--jitter", default="auto", show_default=True,
              help="Colour jitter strength in [0, 1), 0 = off; auto: 0.3 only if jitter keeps the classes.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--data-cache", default=None, type=click.Path(file_okay=False),
              help="Keep resized images in this folder for later runs (decoding large folders once).")
@click.option("--prune", type=click.FloatRange(0, MAX_PRUNE), default=0.0, show_default=True,
              help="Remove this share of every layer's channels (lowest weight magnitude first) from the starting "
                   "network before training: a larger variant made to fit (the build's joint search uses it).")
@click.option("--out", default=None, help="Run directory [runs/<variant>.<strategy>.<hparams>].")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out exactly.")
@click.option("--sanity", is_flag=True, help="Only check that the model can overfit one small batch.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON only.")
def train_cmd(variant, data, weights, strategy, epochs, batch_size, lr, optimizer, patience, seed, val_fraction,
              test_fraction, flip, no_flip, crop, jitter, device, data_cache, prune, out, resume, sanity, as_json):
    """Fine-tune VARIANT on the images in DATA and write a run directory.

    The run directory holds config.yaml, split.json, metrics.jsonl, best.pt, last.pt, curves.png and
    summary.json with the diagnostics of the run (printed at the end). Exit 0 trained, 1 the --sanity
    check failed, 2 bad input.

    Images are streamed: decoded as batches need them (in loader workers for large folders), unreadable
    files skipped and counted. On several processes, launch with PyTorch's torchrun; --batch-size is then
    the global batch, split evenly over the processes, and only rank 0 writes the run directory.

    \b
    Example:
      edgefit demo-data demo --classes 10 --per-class 200 --size 96
      edgefit train --variant mobilenet_v2_0.35_96 --data demo --weights none --epochs 20
      torchrun --nproc_per_node 2 -m edgefit train --variant mobilenet_v2_0.35_96 --data demo --epochs 20
    """
    from ..errors import BadInput
    from ..train import TrainConfig, train
    from ..train import sanity as run_sanity

    if jitter != "auto":
        try:
            jitter = float(jitter)
        except ValueError:
            raise BadInput(f"--jitter takes auto or a number in [0, 1), got {jitter!r}") from None
    cfg = TrainConfig(variant=variant, data=data, weights=weights, strategy=strategy, epochs=epochs,
                      batch_size=batch_size, lr=lr, optimizer=optimizer, patience=patience, seed=seed,
                      val_fraction=val_fraction, test_fraction=test_fraction, flip="off" if no_flip else flip,
                      crop=crop, jitter=None if jitter == "auto" else jitter, device=device, out=out,
                      data_cache=data_cache, prune=prune)
    if sanity:
        verdict = run_sanity(cfg)
        click.echo(json.dumps(verdict, indent=2) if as_json else verdict["verdict"] +
                   f" (batch {verdict['batch']}, loss {verdict['initial_loss']:.3f} -> {verdict['final_loss']:.3f} "
                   f"in {verdict['steps']} steps)")
        raise SystemExit(0 if verdict["passed"] else 1)
    try:
        result = train(cfg, resume=resume, quiet=as_json)
    except KeyboardInterrupt:
        click.echo("edgefit: interrupted; continue with the same command and --resume --out <run dir>", err=True)
        raise SystemExit(130) from None
    from ..train.augment_check import word
    from ..train.progress import is_main_process

    if not is_main_process():  # under torchrun, rank 0 prints for all
        return
    s = result.summary
    if as_json:
        click.echo(json.dumps({"run_dir": str(result.run_dir), **s}, indent=2))
        return
    test = f", test top-1 {s['test_top1']:.3f}" if s["test_top1"] is not None else ""
    click.echo(f"{s['variant']}: best validation top-1 {s['val_top1']:.3f} (epoch {s['best_epoch']}/{s['epochs_run']})"
               f"{test}; {s['train_images_per_sec'] or 0:.0f} train img/s, {s['seconds_per_epoch']:.1f} s/epoch, "
               f"{s['wall_time_s']:.0f} s in all; skipped {sum(s['images_skipped'].values())} unreadable image(s)")
    d = s["decisions"]
    click.echo(f"learning rate {d['lr']['value']:.3g} ({d['lr']['why']}); "
               + "; ".join(f"{k} {word(k, v['on'])} ({v['why']})" for k, v in d["augment"].items()))
    for diag in s["diagnostics"]:
        click.echo(f"{diag['severity']}: {diag['code']}: {diag['message']}")
    if not s["diagnostics"]:
        click.echo("diagnostics: none (loss, accuracy, augmentation and gradients look healthy)")
    click.echo(f"run directory: {result.run_dir} (best.pt, summary.json, curves.png)")
