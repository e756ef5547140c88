import tomllib

from .conftest import ROOT


def test_every_subpackage_ships_in_the_wheel():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "edgefit").rglob("__init__.py")}
    assert found <= listed, found - listed
    assert cfg["package-dir"]["edgefit.model_zoo"] == "model_zoo"
    assert "catalog.yaml" in cfg["package-data"]["edgefit.model_zoo"]


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme


def test_no_source_file_is_git_ignored():
    import shutil
    import subprocess

    import pytest

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    sources = [str(p.relative_to(ROOT)) for d in ("edgefit", "tests", "bench", "budgets", "model_zoo")
               for p in (ROOT / d).rglob("*") if p.is_file() and p.suffix in (".py", ".yaml", ".md")]
    r = subprocess.run(["git", "check-ignore", "--no-index", *sources], cwd=ROOT, capture_output=True, text=True)
    assert r.stdout.strip() == "", f"ignored by .gitignore, so missing from every clone: {r.stdout.split()}"
