"""Timing: edgefit's one protocol, defined in the device probe (device/probe.py) so that a measurement on the
host (calibrate, bench, bench --variant) and one on the target device are taken the same way: warm-up, then
rounds that interleave what is timed together, each round at least its share of the runs and seconds; p50, min
and the spread between the rounds."""
from __future__ import annotations

from .device.probe import PROTOCOL, measure, summarize

__all__ = ["PROTOCOL", "measure", "summarize"]
