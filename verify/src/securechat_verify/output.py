"""Reporting results: a table for people, JSON for scripts, JUnit XML for CI.

The three carry the same data: every check with its status, and every finding with its
status, one-line summary, fix hint and target. A finding's status is the status it counts
as: a failing finding of a `warning`-severity check is reported as `warn`.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from securechat_verify import __version__
from securechat_verify.exit_codes import exit_code_for
from securechat_verify.result import CheckResult, Finding, Metric, Severity, Status
from securechat_verify.target import Target

STATUS_STYLES: dict[Status, str] = {
    Status.PASS: "green",
    Status.WARN: "yellow",
    Status.FAIL: "bold red",
    Status.ERROR: "magenta",
    Status.SKIP: "dim",
}
# Findings whose fix hint is shown.
HINTED = frozenset({Status.WARN, Status.FAIL, Status.ERROR})
# Order of the totals, as in the JSON summary.
TOTALS_ORDER = (Status.PASS, Status.WARN, Status.FAIL, Status.ERROR, Status.SKIP)


def finding_status(result: CheckResult, finding: Finding) -> Status:
    """The status a finding counts as: a warning-level check never fails."""
    if result.severity is Severity.WARNING and finding.status is Status.FAIL:
        return Status.WARN
    return finding.status


def summary_counts(results: Sequence[CheckResult]) -> dict[str, int]:
    """How many checks ended in each status, plus `checks`: the number of checks."""
    counts = {"checks": len(results)} | {status.value: 0 for status in TOTALS_ORDER}
    for result in results:
        counts[result.status.value] += 1
    return counts


def render_table(
    results: Sequence[CheckResult], console: Console, *, target: Target | None = None
) -> None:
    """Print one row per finding (hints under warn/fail/error findings), then a totals line."""
    title = f"securechat-verify {__version__}" + (f" — {target.url}" if target else "")
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("Check", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Finding", overflow="fold", ratio=3)
    table.add_column("Target", overflow="fold", ratio=1)
    for index, result in enumerate(results):
        if index:
            table.add_section()
        if not result.findings:
            table.add_row(Text(result.check_id), _status_text(result.status), Text("(no findings)"))
            continue
        for row, finding in enumerate(result.findings):
            status = finding_status(result, finding)
            cell = Text(finding.summary)
            if status in HINTED and finding.hint:
                cell.append("\n")
                cell.append(f"hint: {finding.hint}", style="italic")
            table.add_row(
                Text(result.check_id) if row == 0 else Text(""),
                _status_text(status),
                cell,
                Text(finding.target or ""),
            )
    console.print(table)
    console.print(_totals(results))


def _status_text(status: Status) -> Text:
    return Text(status.value, style=STATUS_STYLES[status])


def _totals(results: Sequence[CheckResult]) -> Text:
    counts = summary_counts(results)
    checks = counts["checks"]
    text = Text(f"{checks} check{'' if checks == 1 else 's'}: ")
    parts = [status for status in TOTALS_ORDER if counts[status.value]]
    for position, status in enumerate(parts):
        if position:
            text.append(", ")
        text.append(f"{counts[status.value]} {status.value}", style=STATUS_STYLES[status])
    if not parts:
        text.append("none run")
    return text


def to_json(results: Sequence[CheckResult], target: Target) -> dict[str, Any]:
    """The results as JSON-ready data (strict JSON: no NaN or infinities)."""
    return {
        "version": __version__,
        "url": target.url,
        "checks": [
            {
                "id": result.check_id,
                "title": result.title,
                "severity": result.severity.value,
                "status": result.status.value,
                "duration_ms": round(result.duration_ms, 1),
                "findings": [
                    {
                        "status": finding_status(result, finding).value,
                        "summary": finding.summary,
                        "hint": finding.hint,
                        "target": finding.target,
                        "metrics": {key: _json_metric(v) for key, v in finding.metrics.items()},
                    }
                    for finding in result.findings
                ],
            }
            for result in results
        ],
        "summary": summary_counts(results),
        "exit_code": exit_code_for(results),
    }


def _json_metric(value: Metric) -> Metric:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# Characters XML 1.0 cannot carry, even escaped: a hostile server's banner must not break CI.
_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value: str) -> str:
    return _XML_INVALID.sub("\ufffd", value)


def _finding_line(status: Status, finding: Finding) -> str:
    line = f"[{status.value}] {finding.summary}"
    if finding.target:
        line += f" ({finding.target})"
    if status in HINTED and finding.hint:
        line += f"\n  hint: {finding.hint}"
    return line


def junit_tree(results: Sequence[CheckResult]) -> ET.ElementTree[ET.Element]:
    """One testsuite `securechat-verify`, one testcase per check."""
    counts = summary_counts(results)
    suite = ET.Element(
        "testsuite",
        {
            "name": "securechat-verify",
            "tests": str(counts["checks"]),
            "failures": str(counts[Status.FAIL.value]),
            "errors": str(counts[Status.ERROR.value]),
            "skipped": str(counts[Status.SKIP.value]),
            "time": f"{sum(result.duration_ms for result in results) / 1000:.3f}",
        },
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": _xml_text(f"securechat_verify.{result.check_id}"),
                "name": _xml_text(result.title),
                "time": f"{result.duration_ms / 1000:.3f}",
            },
        )
        status = result.status
        if status in (Status.FAIL, Status.ERROR, Status.SKIP):
            tag = {Status.FAIL: "failure", Status.ERROR: "error", Status.SKIP: "skipped"}[status]
            relevant = [f for f in result.findings if finding_status(result, f) is status]
            element = ET.SubElement(case, tag, {"message": _xml_text(_message(relevant))})
            hints = [f.hint for f in relevant if f.hint]
            if hints:
                element.text = _xml_text("\n".join(hints))
        if result.findings:
            out = ET.SubElement(case, "system-out")
            out.text = _xml_text(
                "\n".join(_finding_line(finding_status(result, f), f) for f in result.findings)
            )
    tree: ET.ElementTree[ET.Element] = ET.ElementTree(suite)
    ET.indent(tree)
    return tree


def _message(findings: Sequence[Finding]) -> str:
    if not findings:
        return ""
    if len(findings) == 1:
        return findings[0].summary
    return f"{len(findings)} findings: " + "; ".join(f.summary for f in findings)


def write_junit(results: Sequence[CheckResult], path: Path) -> None:
    """Write the JUnit XML report to `path` (UTF-8, with an XML declaration)."""
    junit_tree(results).write(path, encoding="utf-8", xml_declaration=True)
