import json
import subprocess
import sys

import click
import pytest

from edgefit.cli import main

from .conftest import BUDGETS, ROOT, run_cli


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


ALL_COMMANDS = [()] + [path for path, _ in _commands(main)]


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "edgefit")
def test_every_command_has_help_with_example(path):
    r = run_cli(*path, "--help")
    assert r.returncode == 0
    assert "Usage:" in r.stdout and "Example:" in r.stdout


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0 and "edgefit" in r.stdout


def test_zoo_json_contract():
    r = run_cli("zoo", "--json", "--num-classes", "1000")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) >= 60
    for row in rows:
        assert {"name", "family", "width", "resolution", "macs", "params", "accuracy_prior", "weights"} <= set(row)
        assert isinstance(row["macs"], int) and row["macs"] > 0 and isinstance(row["params"], int)
        assert 0 < row["accuracy_prior"] < 1


def test_zoo_family_table():
    r = run_cli("zoo", "--family", "v2", "--num-classes", "1000")
    assert r.returncode == 0
    assert "mobilenet_v2_0.35_96" in r.stdout and "mobilenet_v1" not in r.stdout, r.stdout


@pytest.mark.parametrize("args,expected", [
    (["zoo", "--family", "v9"], "unknown family"),
    (["select", BUDGETS / "soc-x.yaml", "--objective", "speed"], "unknown objective"),
    (["select", BUDGETS / "soc-x.yaml", "--num-classes", "1"], "--num-classes must be 2 or more"),
    (["select", BUDGETS / "soc-x.yaml", "--top", "0"], "--top"),
    (["select"], "Missing argument"),
    (["nosuchcommand"], "No such command"),
])
def test_usage_errors_exit_2(args, expected):
    r = run_cli(*args)
    assert r.returncode == 2
    assert expected in r.stderr and "Traceback" not in r.stderr


def test_select_json_is_json_only():
    r = run_cli("select", BUDGETS / "raspberry-pi-4.yaml", "--json")
    assert r.returncode == 0
    d = json.loads(r.stdout)
    assert {"chosen", "feasible", "rejected", "nearest_miss"} <= set(d)


def test_warm_select_does_not_import_torch():
    assert run_cli("select", BUDGETS / "soc-x.yaml", "--json").returncode == 1  # warms the cache
    code = (
        "import sys\n"
        "from edgefit.cli import main\n"
        "try:\n"
        f"    main(['select', r'{BUDGETS / 'soc-x.yaml'}', '--json'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 1, e.code\n"
        "heavy = [m for m in ('torch', 'timm', 'torchvision', 'tensorflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
