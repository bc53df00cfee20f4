"""Monitors are not tests of correctness, and say so where they live.

A warn-severity dbt test never fails a build, and one whose rows are near
zero by construction cannot fail at all. Such a test is a monitor: it says
so in its header, carries the dbt tag ``monitor`` (so ``dbt test
--exclude tag:monitor`` runs the checks of correctness alone, and nothing
counts a monitor among them) and is listed in docs block
population_stability. Read from the files: no dbt run needed.
"""

from __future__ import annotations

import re

from loan_recovery.config import project_dir

HEADER = "-- MONITOR, not a test of correctness: warn severity, it never fails a build"
WARN = re.compile(r"severity\s*=\s*['\"]warn['\"]")
MONITOR_TAG = re.compile(r"tags\s*=\s*\[[^\]]*['\"]monitor['\"]")


def singular_tests() -> dict[str, str]:
    return {
        path.stem: path.read_text(encoding="utf-8")
        for path in sorted((project_dir() / "tests").glob("*.sql"))
    }


def test_every_warn_severity_test_is_a_declared_monitor() -> None:
    tests = singular_tests()
    warned = {name for name, text in tests.items() if WARN.search(text)}
    tagged = {name for name, text in tests.items() if MONITOR_TAG.search(text)}
    headed = {name for name, text in tests.items() if text.startswith(HEADER)}
    assert warned, "no monitor found: did the population-shift monitor move?"
    assert warned == tagged == headed, (warned, tagged, headed)


def test_the_docs_name_every_monitor_as_one() -> None:
    docs = (project_dir() / "models" / "docs.md").read_text(encoding="utf-8")
    section = docs.split("**What the monitors are.**", 1)[1].split("{% enddocs %}", 1)[0]
    section = " ".join(section.split())
    monitors = {name for name, text in singular_tests().items() if WARN.search(text)}
    assert {name for name in monitors if name not in section} == set()
    assert "not tests of correctness" in section
