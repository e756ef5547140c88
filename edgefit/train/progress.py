"""Training progress: a rich bar on a terminal, one line per epoch otherwise; rank 0 only."""
from __future__ import annotations

import os
import sys


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class Reporter:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled and is_main_process()
        self.live = self.enabled and sys.stderr.isatty()
        self.progress = None

    def message(self, text: str) -> None:
        if self.enabled:
            print(text, file=sys.stderr, flush=True)

    def epoch_start(self, epoch: int, epochs: int, phase: str, batches: int) -> None:
        if not self.live:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=True,
                                 redirect_stdout=False, redirect_stderr=False)
        self.progress.start()
        self.task = self.progress.add_task(f"epoch {epoch + 1}/{epochs} [{phase}]", total=batches, stats="")

    def batch(self, loss: float, acc: float, ips: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=1, stats=f"loss {loss:.3f} acc {acc:.3f} {ips:.0f} img/s")

    def epoch_end_quiet(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def epoch_end(self, m: dict) -> None:
        self.epoch_end_quiet()
        self.message(f"epoch {m['epoch']}/{m['epochs']} [{m['phase']}] train loss {m['train_loss']:.3f} "
                     f"acc {m['train_top1']:.3f} | val loss {m['val_loss']:.3f} top-1 {m['val_top1']:.3f} | "
                     f"{m['images_per_sec']:.0f} img/s, {m['epoch_seconds']:.1f} s"
                     + ("  *best" if m.get("best") else ""))
