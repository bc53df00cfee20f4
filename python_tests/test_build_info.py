"""build_info: the record of a build, written and read back, in naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from conftest import info_for
from loan_recovery import build_info
from loan_recovery.build_info import utc_now


def test_utc_now_is_naive_utc() -> None:
    now = utc_now()
    assert now.tzinfo is None
    assert abs(now - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=5)


def test_build_info_round_trip_and_other_columns_read_as_none(tmp_path: Path) -> None:
    database = tmp_path / "b.duckdb"
    info = info_for("b1")
    with duckdb.connect(str(database)) as connection:
        build_info.write(connection, info)
        assert build_info.read(connection) == info
        connection.execute("alter table main.build_info add column legal_threshold double")
        assert build_info.read(connection) is None
