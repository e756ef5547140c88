"""`edgefit compress`: prune a trained run to a MAC target or a budget."""
from __future__ import annotations

import json

import click


@click.command("compress")
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--prune-ratio", type=float, default=None, help="Share of MACs to remove, e.g. 0.4.")
@click.option("--target-macs", type=float, default=None, help="MACs to prune down to.")
@click.option("--budget", "budget_file", default=None, help="Prune only as much as this budget needs.")
@click.option("--steps", type=int, default=3, show_default=True, help="Pruning steps, short fine-tunes between.")
@click.option("--round-to", type=int, default=8, show_default=True, help="Keep channel counts multiples of this.")
@click.option("--finetune-epochs", type=int, default=5, show_default=True, help="Recovery fine-tune epochs.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=None, help="Fine-tune learning rate [AdamW 1e-3].")
@click.option("--qat", is_flag=True, help="Then fine-tune with fake quantization so the int8 export keeps accuracy.")
@click.option("--qat-epochs", type=int, default=3, show_default=True, help="Quantization-aware fine-tune epochs.")
@click.option("--qat-lr", type=float, default=None, help="QAT learning rate [AdamW 1e-4].")
@click.option("--out", required=True, help="The compressed run directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON only.")
def compress_cmd(run_dir, prune_ratio, target_macs, budget_file, steps, round_to, finetune_epochs, batch_size, lr,
                 qat, qat_epochs, qat_lr, out, as_json):
    """Prune RUN_DIR's model (channels really removed) and fine-tune it into --out; with --qat (alone or
    after pruning), fine-tune with fake quantization so the int8 export keeps accuracy.

    Exit 0 compressed, 1 no pruning ratio meets the budget, 2 bad input.

    \b
    Example:
      edgefit compress runs/demo-train --prune-ratio 0.4 --out runs/demo-pruned
      edgefit compress runs/demo-train --qat --out runs/demo-qat
    """
    from ..budget import load_budget
    from ..compress import CompressOptions, compress

    budget = load_budget(budget_file) if budget_file else None
    opts = CompressOptions(prune_ratio=prune_ratio, target_macs=target_macs, budget=budget, steps=steps,
                           round_to=round_to, finetune_epochs=finetune_epochs, batch_size=batch_size, lr=lr,
                           qat=qat, qat_epochs=qat_epochs, qat_lr=qat_lr)
    s = compress(run_dir, out, opts, quiet=as_json)
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    c = s["compress"]
    if "before" in c:
        b, a = c["before"], c["after"]
        click.echo(f"pruned {c['channel_ratio']:.0%} of prunable channels: MACs {b['macs'] / 1e6:.1f} M -> "
                   f"{a['macs'] / 1e6:.1f} M ({c['macs_removed']:.0%} fewer), params {b['params'] / 1e6:.2f} M -> "
                   f"{a['params'] / 1e6:.2f} M, int8 size {b['predicted_int8_tflite_kb']:.0f} -> "
                   f"{a['predicted_int8_tflite_kb']:.0f} KB")
        click.echo(f"validation top-1 {b['val_top1']:.3f} -> {a['val_top1']:.3f}; host latency "
                   f"{b['host_latency_ms_onnxruntime']:.2f} -> {a['host_latency_ms_onnxruntime']:.2f} ms: "
                   f"{c['verdict']}")
    if "qat" in c:
        q = c["qat"]
        click.echo(f"quantization-aware training, {q['epochs']} epochs: int8 ONNX validation top-1 "
                   f"{q['int8_onnx_val_top1_before']:.3f} -> {q['int8_onnx_val_top1_after']:.3f} "
                   f"(float {q['float_val_top1_before']:.3f}, with fake quantization {q['fake_quant_val_top1']:.3f})")
    click.echo(f"run directory: {out}")
