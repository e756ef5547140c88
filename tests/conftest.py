import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = ROOT / "budgets"


@pytest.fixture(scope="session", autouse=True)
def _cost_cache(tmp_path_factory):
    """One cost cache for the whole session, away from the user's ~/.cache."""
    old = os.environ.get("EDGEFIT_CACHE_DIR")
    os.environ["EDGEFIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("edgefit-cache"))
    yield Path(os.environ["EDGEFIT_CACHE_DIR"])
    if old is None:
        os.environ.pop("EDGEFIT_CACHE_DIR", None)
    else:
        os.environ["EDGEFIT_CACHE_DIR"] = old


def run_cli(*args, cwd=None, env=None):
    """Run the real console script in a subprocess: exit code, stdout, stderr."""
    exe = Path(sys.executable).with_name("edgefit")
    cmd = [str(exe), *map(str, args)] if exe.exists() else [sys.executable, "-m", "edgefit", *map(str, args)]
    env = {**{k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}, **(env or {})}  # a CI log
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd or ROOT, timeout=300, env=env)


@pytest.fixture
def write_budget(tmp_path):
    def write(text: str, name: str = "budget.yaml") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return write


SOC_X = """\
name: soc-x
flops_per_sec: 500M
storage_kb: 1000
target_fps: 5
min_accuracy: {acc}
precision: int8
num_classes: 1000
"""
