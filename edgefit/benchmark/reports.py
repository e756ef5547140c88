"""Reports: Markdown (a CI job summary), JUnit XML (one test case per budget line), a PNG plot, and
the comparison with a baseline JSON."""
from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from ..errors import BadInput
from ..fsutil import atomic_write_bytes, atomic_write_text


def _key(r: dict) -> tuple:
    return (Path(r["model"]).name, r["runtime"], r["device"], r.get("threads"), r.get("batch"))


def compare(results: list[dict], baseline_path: str, latency_tol: float = 0.10, size_tol: float = 0.01) -> dict:
    try:
        base = json.loads(Path(baseline_path).read_text())
        base_rows = {_key(r): r for r in base["results"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInput(f"--baseline {baseline_path}: not an edgefit bench JSON ({e})") from None
    regressions, compared = [], 0
    for r in results:
        b = base_rows.get(_key(r))
        if not b or "p50_ms" not in r or "p50_ms" not in b:
            continue
        compared += 1
        if r["p50_ms"] > b["p50_ms"] * (1 + latency_tol):
            regressions.append({"model": r["model"], "runtime": r["runtime"], "device": r["device"], "metric": "p50_ms",
                                "baseline": b["p50_ms"], "value": r["p50_ms"],
                                "change": round(r["p50_ms"] / b["p50_ms"] - 1, 4)})
        if r["size_bytes"] > b["size_bytes"] * (1 + size_tol):
            regressions.append({"model": r["model"], "runtime": r["runtime"], "device": r["device"],
                                "metric": "size_bytes", "baseline": b["size_bytes"], "value": r["size_bytes"],
                                "change": round(r["size_bytes"] / b["size_bytes"] - 1, 4)})
    return {"baseline": str(baseline_path), "compared": compared, "latency_tolerance": latency_tol,
            "size_tolerance": size_tol, "regressions": regressions, "passed": not regressions}


def markdown(report: dict) -> str:
    out = ["## edgefit bench", "", f"Host: {report['machine']['cpu']} ({report['machine']['cores']} cores)"
           + (f", GPU {report['machine']['gpu']}" if report["machine"]["gpu"] else ", no GPU"), "",
           "| model | runtime | device | threads | input | p50 ms | p90 ms | p99 ms | FPS | size KB | model MB | "
           "process peak MB |",
           "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in report["results"]:
        if "skipped" in r:
            out.append(f"| {r['model']} | {r['runtime']} | {r['device']} | - | - | skipped: {r['skipped']} "
                       "| | | | | | |")
            continue
        out.append(f"| {r['model']} | {r['runtime']} | {r['device']} | {r['threads'] or 'default'} | "
                   f"{'x'.join(map(str, r['input_shape']))} | {r['p50_ms']:.2f} | "
                   f"{r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {r['fps']:.1f} | {r['size_bytes'] / 1024:,.1f} | "
                   f"{r['model_rss_mb']:.1f} | {r['peak_rss_mb']:.0f} |")
    slow = [r for r in report["results"] if r.get("slower_than_fp32")]
    if slow:
        out += ["", "**int8 slower than its fp32 sibling** (int8 exists to be faster; see the ops outside the "
                "runtime's fast path):"]
        out += [f"- {r['model']} ({r['runtime']}): {r['int8_vs_fp32']:.2f}x the fp32 latency"
                + (("; outside the fast path: " + ", ".join(f"{o['op']} x{o['count']}" for o in r["outside_fast_path"]))
                   if r.get("outside_fast_path") else "") for r in slow]
    b = report.get("budget")
    if b:
        out += ["", f"### Budget `{b['name']}`: {'PASS' if b['passed'] else 'FAIL'}", "",
                "| model | line | value | limit | result | margin | note |",
                "| --- | --- | ---: | ---: | --- | ---: | --- |"]
        for ln in b["lines"]:
            res = "n/a" if ln["passed"] is None else ("pass" if ln["passed"] else "FAIL")
            if ln["passed"] is not None and not ln["gating"]:
                res += " (info)"
            val = "-" if ln["value"] is None else f"{ln['value']:g}"
            margin = "-" if ln["margin"] is None else f"{ln['margin']:+.1%}"
            out.append(f"| {ln['model']} | {ln['constraint']} | {val} | {ln['limit']:g} | {res} | {margin} | "
                       f"{ln['note']} |")
    c = report.get("baseline")
    if c:
        out += ["", f"### Against baseline `{c['baseline']}`: {'no regression' if c['passed'] else 'REGRESSION'}"]
        for g in c["regressions"]:
            out.append(f"- {g['model']} {g['runtime']}/{g['device']}: {g['metric']} {g['baseline']:g} -> "
                       f"{g['value']:g} ({g['change']:+.1%})")
    return "\n".join(out) + "\n"


def junit(report: dict) -> bytes:
    cases = []
    for ln in (report.get("budget") or {}).get("lines", []):
        cases.append((ln["model"], ln["constraint"], ln["passed"] is False and ln["gating"],
                      ln["passed"] is None,
                      f"{ln['constraint']} = {ln['value']} vs limit {ln['limit']} ({ln['note']})"))
    for g in (report.get("baseline") or {}).get("regressions", []):
        cases.append((g["model"], f"regression {g['metric']}", True, False,
                      f"{g['metric']} {g['baseline']} -> {g['value']} ({g['change']:+.1%})"))
    suite = ET.Element("testsuite", name="edgefit-bench", tests=str(len(cases)),
                       failures=str(sum(1 for c in cases if c[2])), skipped=str(sum(1 for c in cases if c[3])))
    for model, name, failed, skipped, message in cases:
        case = ET.SubElement(suite, "testcase", classname=model, name=name)
        if failed:
            ET.SubElement(case, "failure", message=message).text = message
        elif skipped:
            ET.SubElement(case, "skipped", message=message)
        else:
            ET.SubElement(case, "system-out").text = message
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="utf-8", xml_declaration=True)


def plot(report: dict, path: str) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["results"] if "p50_ms" in r]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        ax.scatter(r["p50_ms"], r["size_bytes"] / 1024)
        ax.annotate(f"{Path(r['model']).name} [{r['runtime']}/{r['device']}]", (r["p50_ms"], r["size_bytes"] / 1024),
                    fontsize=7, xytext=(3, 3), textcoords="offset points")
    b = report.get("budget")
    if b:
        ax.axhline(b["storage_kb"] - b["runtime_kb"], ls="--", color="red", label="storage budget")
        ax.axvline(1000 / b["target_fps"], ls=":", color="red", label="latency for target FPS")
        ax.legend(fontsize=8)
    ax.set_xlabel("p50 latency on this host (ms)")
    ax.set_ylabel("file size (KB)")
    ax.set_title("edgefit bench")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write_text(path: str, text: str) -> None:
    atomic_write_text(path, text)
