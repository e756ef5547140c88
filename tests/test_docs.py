"""The docs stay true: their examples run, the command reference is `--help`, the README's figures are measured.

Conventions in README.md and docs/*.md (HTML comments, which GitHub does not show):

    <!-- example: fast -->     before a ```sh / ```bash / ```console block (or ```python): the fast test runs it
    <!-- example: slow -->     the slow test runs it (it trains, exports or times models)
    <!-- example: skip: REASON[; stand-in: COMMAND] -->
                               not run here (a Raspberry Pi, a GPU, an Apple device...). The block itself shows the
                               reader `# not run by the tests: REASON`. The slow test runs COMMAND in its place, so
                               the examples after it find what the device would have produced.
    <!-- example: file NAME -->   before a block of any language: its text is written to NAME, where the page has it
    <!-- example: output -->      before a ```text block: each of its lines is in the output of the example before

    Modifiers, after `;`:
      exit N | exit N or M     the exit codes expected (default 0; the page says when an example shows a refusal,
                               a FAIL, or a verdict that depends on the images)
      in repo                  run in the checkout, not in the page's scratch folder (read-only commands)
      offline                  `--weights none` is appended to its `edgefit build` / `edgefit train` lines: the
                               example starts from ImageNet weights, which the offline tests cannot download
      needs run PATH | needs artifacts PATH | needs images PATH
                               a copy of the session's trained run / verified export (tests/conftest.py) at PATH,
                               replacing what the page made there (a build on a few generated images, as a test
                               runs it, need not train a model that passes verify), or a few images of its
                               classes (tests/conftest.py make_colours)

Each page's examples run in order, in one scratch folder per page (with the checkout's `budgets/` linked in), under
`bash -e -o pipefail`, with the virtualenv's bin first on PATH. The fast test of a page runs its fast examples; the
slow test runs every example of the page, skipped ones replaced by their stand-in. A shell block without a marker
fails the test, and so does an `edgefit` command (in a block or in `inline code`) with an option it does not have.

Figures in README.md are read from bench/results/: `<!--fig:FILE#KEY-->TEXT`, where TEXT is FILE's KEY (dotted
for nested keys) as `format_figure` writes it ("3 min 52 s", "2", "not measured yet" for null). A number with a
unit (s, min, ms, %, KB, MB, GB, FPS, -core) in the README's prose without such a marker fails the test: a figure
typed by hand cannot pass. `<!--quote:PATH-->` ... `<!--/quote-->`: every line between is a line of PATH.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .conftest import make_colours

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GENERATED = ROOT / "docs" / "commands.md"
RESULTS = ROOT / "bench" / "results"
SHELL = ("sh", "bash", "console", "shell")
MARK = re.compile(r"^<!--\s*example:\s*(.*?)\s*-->$")
FENCE = re.compile(r"^```\s*([\w-]*)\s*$")
VENV_BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin").is_dir() else Path(sys.executable).parent
FAST_TIMEOUT, SLOW_TIMEOUT = 180, 2400


@dataclass
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    kind: str | None = None  # fast | slow | skip | file | output | None (unmarked)
    reason: str = ""
    stand_in: str = ""
    name: str = ""
    exits: tuple = (0,)
    in_repo: bool = False
    offline: bool = False
    needs: list = field(default_factory=list)  # [(what, path)]

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def parse_mark(mark: str, b: Block) -> None:
    """Fill `b` from the text of an `example:` comment; a malformed one raises ValueError."""
    head, *mods = [m.strip() for m in mark.split(";")]
    if head in ("fast", "slow", "output"):
        b.kind = head
    elif head.startswith("skip:"):
        b.kind, b.reason = "skip", head[5:].strip()
    elif head.startswith("file "):
        b.kind, b.name = "file", head[5:].strip()
    else:
        raise ValueError(f"unknown example kind {head!r}")
    for m in mods:
        if m.startswith("stand-in:") and b.kind == "skip":
            b.stand_in = m[9:].strip()
        elif re.fullmatch(r"exit \d( or \d)*", m):
            b.exits = tuple(int(x) for x in re.findall(r"\d", m))
        elif m == "in repo":
            b.in_repo = True
        elif m == "offline":
            b.offline = True
        elif re.fullmatch(r"needs (run|artifacts|images) \S+", m):
            b.needs.append(tuple(m.split()[1:]))
        else:
            raise ValueError(f"unknown modifier {m!r}")


def blocks(doc: Path) -> list[Block]:
    """The fenced blocks of `doc`, each with the `example:` comment on the last non-blank line before it."""
    lines = doc.read_text().splitlines()
    out, i, prev = [], 0, ""
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m:
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            b = Block(doc, i + 1, m.group(1).lower(), "\n".join(lines[i + 1:j]) + "\n")
            mark = MARK.match(prev.strip())
            if mark:
                try:
                    parse_mark(mark.group(1), b)
                except ValueError as e:  # test_markers_parse names it
                    b.kind, b.reason = "bad", str(e)
            out.append(b)
            i, prev = j + 1, ""
            continue
        if lines[i].strip():
            prev = lines[i]
        i += 1
    return out


def all_blocks() -> list[Block]:
    return [b for d in DOCS if d != GENERATED for b in blocks(d)]


# ------------------------------------------------------------------------------------------- running examples
def script(b: Block) -> str:
    if b.lang == "python":
        return f"python3 - <<'EDGEFIT_DOCS_EOF'\n{b.text}EDGEFIT_DOCS_EOF\n"
    text = b.text
    if b.offline:
        lines = text.splitlines()
        hits = [i for i, ln in enumerate(lines) if re.match(r"\s*edgefit (build|train)\b", ln) and
                "--weights" not in ln]
        assert hits, f"{b.where}: `offline` but no edgefit build/train line without --weights"
        for i in hits:
            lines[i] = lines[i].split("#")[0].rstrip() + " --weights none"
        text = "\n".join(lines) + "\n"
    return text


def run(cmd: str, cwd: Path, where: str, timeout: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    try:
        return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", cmd], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{where}: still running after {timeout} s:\n{cmd}")


def provide(needs: list, work: Path, request) -> None:
    """Copies of the session's trained run / exported model where an example expects its own."""
    for what, rel in needs:
        dest = work / rel
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if what == "images":
            dest.mkdir()
            make_colours(dest, per_class=10, noise=30, seed=2)
            continue
        src = request.getfixturevalue("trained_run") if what == "run" else request.getfixturevalue("exported_art")[0]
        shutil.copytree(src, dest)


def run_page(doc: Path, work: Path, slow: bool, request) -> list[str]:
    """Run `doc`'s examples in order in `work`; returns what ran, for the log."""
    (work / "budgets").symlink_to(ROOT / "budgets")
    done, last = [], None
    for b in blocks(doc):
        if b.kind == "file":
            (work / b.name).parent.mkdir(parents=True, exist_ok=True)
            (work / b.name).write_text(b.text)
            continue
        if b.kind == "output":
            if last is not None:
                missing = [ln for ln in b.text.splitlines() if ln.strip() and ln.strip() not in last]
                assert not missing, f"{b.where}: the example before does not print {missing}"
            continue
        if b.kind == "skip":
            if slow and b.stand_in:
                t0 = time.perf_counter()
                r = run(b.stand_in, work, b.where, SLOW_TIMEOUT)
                assert r.returncode == 0, f"{b.where}: stand-in `{b.stand_in}` exit {r.returncode}:\n{r.stderr[-3000:]}"
                done.append(f"{b.where} stand-in ({time.perf_counter() - t0:.0f} s)")
            last = None
            continue
        if b.kind not in ("fast", "slow") or (b.kind == "slow" and not slow):
            last = None
            continue
        provide(b.needs, work, request)
        t0 = time.perf_counter()
        r = run(script(b), ROOT if b.in_repo else work, b.where, SLOW_TIMEOUT if slow else FAST_TIMEOUT)
        assert r.returncode in b.exits, (f"{b.where}: exit {r.returncode}, expected {' or '.join(map(str, b.exits))}"
                                         f"\n--- example\n{b.text}--- stdout\n{r.stdout[-3000:]}\n--- stderr\n"
                                         f"{r.stderr[-3000:]}")
        last = r.stdout + r.stderr
        done.append(f"{b.where} ({time.perf_counter() - t0:.0f} s)")
    return done


def pages(kind: str) -> list[Path]:
    return [d for d in DOCS if d != GENERATED and any(b.kind == kind for b in blocks(d))]


@pytest.mark.parametrize("doc", pages("fast"), ids=lambda p: str(p.relative_to(ROOT)))
def test_fast_examples_run(doc, tmp_path, request):
    assert run_page(doc, tmp_path, slow=False, request=request)


@pytest.mark.slow
@pytest.mark.parametrize("doc", pages("slow"), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_runs(doc, tmp_path, request):
    ran = run_page(doc, tmp_path, slow=True, request=request)
    print("\n".join(ran))


@pytest.mark.parametrize("block", [b for b in all_blocks() if b.kind == "skip"], ids=lambda b: b.where)
def test_examples_not_run_here_say_why(block):
    shown = f"# not run by the tests: {block.reason}"
    assert shown in block.text.splitlines(), f"{block.where}: the block should show the reader `{shown}`"
    pytest.skip(f"{block.where}: {block.reason}")


def test_every_shell_example_is_marked():
    unmarked = [b.where for b in all_blocks() if b.lang in SHELL and b.kind is None]
    assert not unmarked, f"shell examples without an `<!-- example: ... -->` comment: {unmarked}"
    for b in all_blocks():
        if b.kind in ("fast", "slow", "skip"):
            assert b.lang in (*SHELL, "python"), f"{b.where}: a runnable example is a ```sh, ```bash, ```console " \
                "or ```python block"
        if b.kind == "output":
            assert b.lang == "text", f"{b.where}: an `output` block is ```text"


def test_markers_parse_and_each_precedes_a_block():
    bad = [f"{b.where}: {b.reason}" for b in all_blocks() if b.kind == "bad"]
    assert not bad, bad
    for doc in DOCS:
        marks = sum(bool(MARK.match(ln.strip())) for ln in doc.read_text().splitlines())
        assert marks == sum(b.kind is not None for b in blocks(doc)), f"{doc}: an example comment before no block"


# ------------------------------------------------------------------------------------- commands and options
def test_command_reference_is_the_help():
    from edgefit.cli import main

    r = subprocess.run([sys.executable, str(ROOT / "docs" / "make_commands.py")], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert GENERATED.read_text() == r.stdout, (
        "docs/commands.md differs from the commands' --help: run .venv/bin/python docs/make_commands.py > "
        "docs/commands.md")
    assert all(f"## edgefit {name}\n" in r.stdout for name in main.list_commands(None))


def edgefit_commands() -> list[tuple[str, list[str]]]:
    """(where, tokens after `edgefit`) of every edgefit command in a page's shell blocks and inline code."""
    out = []
    for doc in DOCS:
        if doc == GENERATED:
            continue
        text = doc.read_text()
        spans = [(f"{doc.relative_to(ROOT)}:{b.line}", ln) for b in blocks(doc) if b.lang in SHELL
                 for ln in b.text.replace("\\\n", " ").splitlines()]
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        spans += [(f"{doc.relative_to(ROOT)} `{s}`", s) for s in re.findall(r"`([^`\n]+)`", prose)]
        for where, s in spans:
            for m in re.finditer(r"(?:^|[\s'(])(?:edgefit|-m edgefit)\s+(.*)", s):
                rest = m.group(1).split("#")[0].split("&&")[0].split("|")[0].split("'")[0]
                try:
                    out.append((where, shlex.split(rest)))
                except ValueError:
                    out.append((where, rest.split()))
    return out


def unknown_options(tokens: list[str]) -> tuple[str | None, list[str]]:
    """(command path, options it lacks) for the words after `edgefit`; (None, []) for prose or a group alone."""
    import click

    from edgefit.cli import main

    cmd, ctx, rest, path, bad = main, click.Context(main), list(tokens), ["edgefit"], []
    while rest and isinstance(cmd, click.Group):
        if rest[0].startswith("-"):
            opt = rest.pop(0)
            if opt not in {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"-h", "--help"}:
                bad.append(opt)
            continue
        sub = cmd.get_command(ctx, rest[0])
        if sub is None:
            return None, []
        path.append(rest.pop(0))
        cmd = sub
    if isinstance(cmd, click.Group):
        return None, []
    known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"-h", "--help"}
    bad += [t.split("=")[0] for t in rest if t.startswith("--") and t.split("=")[0] not in known]
    return " ".join(path), bad


def test_documented_commands_and_options_exist():
    found = [(where, *unknown_options(tokens)) for where, tokens in edgefit_commands()]
    assert len([f for f in found if f[1]]) > 20
    wrong = [f"{where}: `{path}` has no option {', '.join(bad)}" for where, path, bad in found if bad]
    assert not wrong, "\n".join(wrong)


def test_a_misnamed_option_would_fail():
    assert unknown_options(["select", "budgets/soc-x.yaml", "--objective", "size"]) == ("edgefit select", [])
    assert unknown_options(["budget", "validate", "b.yaml", "--jsn"]) == ("edgefit budget validate", ["--jsn"])
    assert unknown_options(["--verbose", "export", "RUN", "--min-agreement=0.9", "--minimum"])[1] == ["--minimum"]
    assert unknown_options(["picks", "a", "network"]) == (None, [])


# -------------------------------------------------------------------------------------------- README figures
README = ROOT / "README.md"
FIG = re.compile(r"<!--fig:([\w.-]+)#([\w.]+)-->\s*(not measured yet|\d+ min \d+ s|\d+ min|\d+ s|\d+(?:\.\d+)?)?")
UNIT = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?\s?(?:-core|%|ms|s|sec|seconds?|min|minutes?|h|hours?|KB|MB|GB|FPS|fps)"
                  r"(?![\w])")


def format_figure(key: str, value) -> str:
    """How the README writes bench/results/FILE's KEY: a duration for *seconds keys, else the number."""
    if value is None:
        return "not measured yet"
    if key.split(".")[-1].endswith("seconds"):
        m, s = divmod(int(round(float(value))), 60)
        return f"{m} min {s} s" if m else f"{s} s"
    return f"{value:g}" if isinstance(value, float) else str(value)


def lookup(file: str, key: str):
    d = json.loads((RESULTS / file).read_text())
    for part in key.split("."):
        d = d[part]  # a KeyError names what bench/results/FILE lacks
    return d


def test_readme_figures_are_read_from_bench_results():
    figs = list(FIG.finditer(README.read_text()))
    assert len(figs) >= 3, "the README quotes the demo build's and the test suite's durations"
    for m in figs:
        file, key, shown = m.groups()
        want = format_figure(key, lookup(file, key))
        assert shown == want, (f"README.md quotes {shown!r} for bench/results/{file} {key}; the file says "
                               f"{lookup(file, key)!r}: write {want!r}")


def prose(text: str) -> str:
    """The README without code, comments, figures (with their marker) and quoted regions."""
    text = re.sub(r"<!--quote:.*?<!--/quote-->", "", text, flags=re.S)
    text = FIG.sub("", text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def test_readme_has_no_hand_typed_figures():
    typed = [m.group(0) for m in UNIT.finditer(prose(README.read_text()))]
    assert not typed, f"figures in README.md without a <!--fig:FILE#KEY--> source in bench/results/: {typed}"


def test_a_hand_typed_figure_would_fail():
    assert UNIT.findall(prose("The demo took 4 min on a 2-core host, 98% of them training (12 MB)."))
    assert not UNIT.findall(prose("On a <!--fig:build_demo.json#machine.cpu_count-->2-core machine it took "
                                  "<!--fig:build_demo.json#build_wall_seconds-->3 min 52 s."))
    assert format_figure("build_wall_seconds", 232.4) == "3 min 52 s"
    assert format_figure("wall_seconds", 59.6) == "1 min 0 s" and format_figure("wall_seconds", 42) == "42 s"


def test_readme_quotes_are_verbatim():
    quotes = re.findall(r"<!--quote:(\S+?)-->\n(.*?)<!--/quote-->", README.read_text(), flags=re.S)
    assert quotes
    for path, body in quotes:
        source = set((ROOT / path).read_text().splitlines())
        for line in body.splitlines():
            assert not line.strip() or line in source, f"README.md quotes a line that is not in {path}: {line}"


def test_readme_is_short():
    assert len(README.read_text().splitlines()) <= 200
