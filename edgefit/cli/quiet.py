"""A quiet terminal: third-party log lines and warnings stay off a command's stderr unless --verbose.

TensorFlow, LiteRT, absl and Ray log from C++ straight to file descriptor 2 (and so do the subprocesses edgefit
starts, which inherit it), torch and timm through Python's warnings and logging. A user reads those lines as
errors of their run. So, once per command:
- Python warnings (edgefit reports through its own lines, never warnings) and log records below ERROR are dropped;
- descriptor 2 becomes a pipe read by a thread that drops the known third-party log formats (glog/absl info and
  warning lines, TFLite's INFO lines, Ray's timestamped INFO/WARNING lines) and passes everything else on, errors
  included; Python's own `sys.stderr` keeps writing to the terminal directly, so progress bars still see a tty.
`--verbose` (or EDGEFIT_VERBOSE=1) leaves all of it alone.
"""
from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import warnings

NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IW]\d{4} \d\d:\d\d:[\d.]+\s+\d+ [\w./-]+:\d+\]"  # glog / absl INFO and WARNING lines (clock or epoch)
    rb"|INFO: "  # TFLite's own INFO lines (e.g. the XNNPACK delegate it created)
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(INFO|WARNING) "  # Ray's driver log
    rb"|\x1b\[33m\(raylet\)|\(raylet\)"  # Ray's raylet messages forwarded to the driver
    rb")")
_STATE: dict = {}


def _pump(read_fd: int, out_fd: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        pending += chunk
        *lines, pending = re.split(rb"(?<=[\n\r])", pending)
        keep = b"".join(ln for ln in lines if not NOISE.match(ln.lstrip(b"\r")))
        if keep:
            os.write(out_fd, keep)
    if pending and not NOISE.match(pending):
        os.write(out_fd, pending)


def _finish() -> None:
    """Close the pipe's write end and let the thread pass on what is left (at exit)."""
    saved = _STATE.pop("saved", None)
    if saved is None:
        return
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(saved, 2)  # the pipe's last writer in this process goes away
    _STATE["thread"].join(timeout=5)


def quiet_third_party() -> None:
    """Filter third-party noise from this process's stderr (and its children's), unless EDGEFIT_VERBOSE is set."""
    if os.environ.get("EDGEFIT_VERBOSE") or "saved" in _STATE:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
        read_fd, write_fd = os.pipe()
    except OSError:
        return
    sys.stderr = os.fdopen(os.dup(terminal), "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                           errors="backslashreplace")
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_pump, args=(read_fd, terminal), name="edgefit-stderr-filter", daemon=True)
    thread.start()
    _STATE.update(saved=terminal, thread=thread)
    atexit.register(_finish)
