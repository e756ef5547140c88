"""`edgefit build` when the first candidate's int8 file fails parity: it trains the next candidate that fits."""
import json

import pytest

from .conftest import run_cli
from .test_build import BUDGET


@pytest.mark.slow
def test_a_candidate_whose_int8_fails_parity_makes_the_build_train_the_next(tmp_path):
    """Ten demo shapes after 3 epochs from scratch: the models are weak and their scores near ties, so their int8
    files disagree with them (ONNX int8 agreement about 0.5-0.87 on the Xeon host, against the 0.98 parity needs; a real
    failure, nothing planted). The build then trains select's next candidate, keeps the better, lists both, and a
    rerun skips every stage of both."""
    data = tmp_path / "shapes"
    assert run_cli("demo-data", data, "--classes", "10", "--per-class", "20", "--size", "48").returncode == 0
    budget = tmp_path / "b.yaml"  # 1.5 MB admits three 96 px variants
    budget.write_text(BUDGET.format(acc=0.0).replace("storage_kb: 1024", "storage_kb: 1536"))
    out = tmp_path / "out"
    args = ["build", budget, "--data", data, "--out", out, "--weights", "none", "--epochs", "3", "--batch-size", "8",
            "--max-resolution", "96", "--formats", "onnx", "--qat", "never"]
    r = run_cli(*args)
    assert r.returncode in (0, 1), r.stderr[-3000:]
    rep = json.loads((out / "report.json").read_text())
    assert r.returncode == (0 if rep["passed"] else 1)
    feasible = [c["name"] for c in json.loads((out / "stages" / "select.json").read_text())["outputs"]["feasible"]]
    tries = rep["parity_tries"]
    assert [t["name"] for t in tries] == feasible[:2], (tries, feasible)
    first, second = tries
    assert not first["passed"] and first["lowest_agreement"] < first["required_agreement"] == 0.98
    assert (f"[parity] {first['name']}'s int8 artifact failed parity after post-training quantization (lowest top-1 "
            f"agreement {first['lowest_agreement']:.3f} < 0.98): trying the next candidate, {second['name']}"
            ) in r.stderr
    nxt = out / "next" / second["name"]
    assert (nxt / "artifacts" / "model_int8.onnx").is_file() and (nxt / "train" / "best.pt").is_file()
    assert (out / "stages" / f"train@{second['name']}.json").is_file()
    assert second["art_dir"] == str(nxt / "artifacts") and first["art_dir"] == str(out / "artifacts")
    # the better is kept: parity first, then the final file's test top-1; the better ranked on a tie
    best = max(tries, key=lambda t: (t["passed"], t["test_top1"]))
    assert [t["kept"] for t in tries] == [t is best for t in tries]
    assert rep["candidates"]["chosen"] == best["name"] and rep["artifacts"]["dir"] == best["art_dir"]
    assert rep["model"]["variant"] == best["variant"]
    assert ("parity" in rep["failing"]) == (not best["passed"])
    md = (out / "report.md").read_text()
    assert "## Candidates tried for int8 parity" in md
    assert f"Ranked first by prior: `{first['name']}` (no --search); trained next: `{second['name']}`" in md
    assert f"| {first['name']} | no | {first['lowest_agreement']:.3f} | 0.980 |" in md and f"| {second['name']} |" in md

    again = run_cli(*args)
    assert again.returncode == r.returncode, again.stderr[-3000:]
    assert f"[train@{second['name']}] unchanged since the last run" in again.stderr
    assert "running" not in " ".join(ln for ln in again.stderr.splitlines() if ln.startswith("[train"))
    assert json.loads((out / "report.json").read_text())["parity_tries"] == tries
