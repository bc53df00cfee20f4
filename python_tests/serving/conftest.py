"""Fixtures shared by the serving unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from loan_recovery.serving import swap
from loan_recovery.serving.paths import ServedPaths
from serving.helpers import build_id_of, make_database


@pytest.fixture
def two_builds(tmp_path: Path) -> ServedPaths:
    """b2 served, b1 as the previous build: the state after two publishes."""
    served = ServedPaths(tmp_path / "served.duckdb")
    make_database(served.served, "b1")
    swap.swap_in(make_database(tmp_path / "b2.duckdb", "b2"), served)
    assert (build_id_of(served.served), build_id_of(served.previous)) == ("b2", "b1")
    return served
