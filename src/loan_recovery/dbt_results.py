"""Reading dbt's results and logs into one-line reasons a person can act on.

``loan-recovery build`` must say in one line why a build failed, with no
traceback: dbt's messages wrap the real cause in "X Error in model ..."
headers, macro call stacks and DuckDB's echoed SQL. These functions find the
node that failed (from run_results.json) and the line of its message that
says what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# dbt result statuses that mean "this node did not pass".
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
NODE_KINDS = {
    "model": "model",
    "seed": "seed",
    "test": "data test",
    "unit_test": "unit test",
    "operation": "hook",
    "snapshot": "snapshot",
}


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TIMESTAMP = re.compile(r"^\d\d:\d\d:\d\d(?:\.\d+)?\s+")
_WRAPPER = re.compile(
    r"^(?:Compilation|Runtime|Database|Parsing|Dependency|Unit Test) Error in "
    r"(?:model|seed|test|unit_test|operation|snapshot|macro)\b"
)
_NOISE = (
    "> in macro",
    "> called by",
    "compiled code at",
    "Possible Solution",
    "Possible fixes",
    "Original Line:",
    "The search space used was",
    "LINE ",
    "^",
    "*",
)
_CSV_LINE = re.compile(r"^(?:[A-Za-z ]*Error: )?CSV Error on Line: (\d+)\s*$")


def clean_line(line: str) -> str:
    """A log line without colour codes and dbt's leading timestamp."""
    return _TIMESTAMP.sub("", _ANSI.sub("", line)).strip()


def first_meaningful_line(message: str | None, limit: int = 300) -> str:
    """The line of a dbt or DuckDB error that says what is wrong.

    Drops dbt's "X Error in model ..." wrapper and macro call stacks, and
    DuckDB's echoes and hints; joins DuckDB's two-line CSV errors into one.
    """
    lines = [clean_line(line) for line in (message or "").splitlines()]
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        # A Python model's exception: its last line says what went wrong.
        last = next(line for line in reversed(lines) if line)
        lines = [f"Python model failed: {last}"]
    lines = [
        line for line in lines if line and not _WRAPPER.match(line) and not line.startswith(_NOISE)
    ]
    if not lines:
        return "no error message (see the log)"
    first = lines[0]
    csv_line = _CSV_LINE.match(first)
    if csv_line and len(lines) > 1:
        first = f"CSV error on line {csv_line.group(1)}: {lines[1]}"
    elif "Error when sniffing file" in first and len(lines) > 1:
        first = f"{first.rstrip('.')}: {lines[1]}"
    first = " ".join(first.split())
    return first if len(first) <= limit else first[: limit - 3] + "..."


@dataclass(frozen=True)
class NodeFailure:
    """A dbt node that did not pass: what kind, which, and its message."""

    kind: str
    name: str
    status: str
    message: str
    compiled_code: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


def node_failures(results: Mapping[str, Any] | None, statuses: frozenset[str]) -> list[NodeFailure]:
    """Nodes whose status is in ``statuses``, in the order dbt started them."""
    found: list[tuple[str, NodeFailure]] = []
    for result in (results or {}).get("results", []):
        if str(result.get("status", "")).lower() not in statuses:
            continue
        unique_id = str(result.get("unique_id", "?"))
        parts = unique_id.split(".")
        kind = NODE_KINDS.get(parts[0], parts[0])
        if parts[0] == "unit_test" and len(parts) >= 4:
            name = f"{parts[2]}.{parts[3]}"
        elif parts[0] == "operation":
            name = parts[-1].split("-", 1)[-1] if len(parts) > 2 else unique_id
        else:
            name = parts[2] if len(parts) > 2 else unique_id
        timing = result.get("timing") or [{}]
        started = str(timing[0].get("started_at") or "~")
        found.append(
            (
                started,
                NodeFailure(
                    kind=kind,
                    name=name,
                    status=str(result.get("status")),
                    message=str(result.get("message") or ""),
                    compiled_code=str(result.get("compiled_code") or ""),
                ),
            )
        )
    return [failure for _, failure in sorted(found, key=lambda pair: pair[0])]


def error_from_output(output: str) -> str:
    """The first error dbt printed, for failures that happen before run_results exists."""
    lines = [clean_line(line) for line in output.splitlines()]
    lines = [line for line in lines if line]
    for index, line in enumerate(lines):
        if re.search(r"\b(?:Error|error:|Traceback|Exception)\b", line):
            if re.match(r"^Encountered an error", line) or _WRAPPER.match(line):
                return first_meaningful_line("\n".join(lines[index + 1 : index + 8]))
            return first_meaningful_line("\n".join(lines[index : index + 8]))
    return "dbt failed without an error message (see the log)"


def model_timings(results: Mapping[str, Any] | None) -> list[tuple[str, float]]:
    """(model, seconds) for every model in run_results.json, in the order dbt ran them."""
    return [
        (str(result["unique_id"]).rsplit(".", 1)[-1], float(result.get("execution_time") or 0.0))
        for result in (results or {}).get("results", [])
        if str(result.get("unique_id", "")).startswith("model.")
    ]


def describe_timings(timings: Sequence[tuple[str, float]]) -> str:
    """The models' times for a log line, slowest first."""
    ordered = sorted(timings, key=lambda timing: -timing[1])
    return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in ordered)
