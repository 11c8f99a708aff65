"""Scenario results: one record each, written as JSON and as a Markdown table."""

from __future__ import annotations

import json
import math
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class Result:
    """One scenario's figure, the raw baseline measured in the same run, and the verdict.

    `ratio` is value / baseline. Whether higher or lower is better depends on the unit, so
    `target` says it in words and `passed` is the verdict on every part of the target.
    """

    id: str
    scenario: str
    value: float
    unit: str
    baseline: float
    target: str
    passed: bool
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ratio(self) -> float:
        if not self.baseline or math.isnan(self.baseline) or math.isnan(self.value):
            return math.nan
        return self.value / self.baseline

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = _clean(self.ratio)
        data["value"] = _clean(self.value)
        data["baseline"] = _clean(self.baseline)
        data["pass"] = data.pop("passed")
        return data


def failed(id_: str, scenario: str, error: str) -> Result:
    """A scenario that could not run: reported, never silently left out."""
    return Result(id_, scenario, math.nan, "", math.nan, "", False, error=error)


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


def _fmt(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        memory_kb = 0
    try:
        load = list(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = []
    return {
        "cpu": cpu,
        "cores": _cores(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_average_at_start": load,
        "postgres": _postgres_version(),
    }


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def _postgres_version() -> str:
    try:
        out = subprocess.run(
            ["psql", "--version"], capture_output=True, text=True, timeout=5, check=False
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def table(results: list[Result]) -> str:
    rows = [
        "| id | scenario | value | raw baseline | ratio | target | pass |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.error:
            rows.append(f"| {r.id} | {r.scenario} | error: {r.error} | | | | no |")
            continue
        rows.append(
            f"| {r.id} | {r.scenario} | {_fmt(r.value)} {r.unit} | {_fmt(r.baseline)} {r.unit} "
            f"| {_fmt(r.ratio)} | {r.target} | {'yes' if r.passed else 'no'} |"
        )
    return "\n".join(rows)


def write(results: list[Result], folder: Path, *, quick: bool, seconds: float) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    info = machine()
    document = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "seconds": round(seconds, 1),
        "machine": info,
        "scenarios": [r.as_json() for r in results],
    }
    (folder / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    markdown = (
        f"Rapport benchmarks, {document['when']} ({'quick' if quick else 'full'} run, "
        f"{seconds:.0f} s) on {info['cores']} cores ({info['cpu']}), load average at start "
        f"{' '.join(info['load_average_at_start'])}.\n\n" + table(results) + "\n"
    )
    details = []
    for r in results:
        if r.details:
            details.append(f"- **{r.id}**: " + json.dumps(r.details, default=str))
    if details:
        markdown += "\nDetails:\n\n" + "\n".join(details) + "\n"
    (folder / "latest.md").write_text(markdown)
    return markdown
