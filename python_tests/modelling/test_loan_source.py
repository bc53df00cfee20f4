"""Model input read from DuckDB: checked in SQL, sampled in SQL, scored and written in batches.

The dbt Python models hand the package a relation and their session, and
return a stream that dbt-duckdb writes with ``create table as`` on that same
session. These tests do exactly that on a DuckDB file, without dbt, and
hold the result to the in-memory path on the same loans.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from loan_recovery.config import cluster_features, post_outcome_columns, run_setting_defaults
from loan_recovery.modelling import forest, loan_source
from loan_recovery.modelling.loan_source import LoanSource
from loan_recovery.modelling.segment_score import score_segment_risk

FEATURES = cluster_features()
SETTINGS = {
    "post_outcome_columns": post_outcome_columns(),
    "n_trees": 10,
    "sample_rows": 1_000,
    "random_state": run_setting_defaults()["random_state"],
}


def make_loans(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(0.0, 1.0, (n, len(FEATURES))), columns=FEATURES)
    frame.insert(0, "loan_id", [f"L{i:06d}" for i in range(n)])
    frame["is_high_risk"] = frame["num_missed_payments"] + frame["days_past_due"] > 0.5
    frame["is_resolved"] = rng.random(n) < 0.7
    return frame


def written_like_dbt(
    session: duckdb.DuckDBPyConnection, reader: pa.RecordBatchReader
) -> pd.DataFrame:
    """What dbt-duckdb's materialize does with a Python model's result, on the model's cursor."""
    session.register("__dbt_python_model_df", reader)
    session.execute("create table written as select * from __dbt_python_model_df")
    session.unregister("__dbt_python_model_df")
    return session.sql("select * from written order by loan_id").df()


def test_a_relation_is_scored_while_dbt_writes_it_as_in_memory(tmp_path: Path, monkeypatch) -> None:
    # Small batches, so the stream really runs in many pieces.
    monkeypatch.setattr(loan_source, "BATCH_ROWS", 700)
    loans = make_loans(5_000)
    with duckdb.connect(str(tmp_path / "build.duckdb")) as database:
        database.execute("create table loans as select * from loans")
        session = database.cursor()
        relation = session.query("select * from loans")
        fitted = score_segment_risk(relation, FEATURES, session=session, **SETTINGS)
        written = written_like_dbt(session, fitted.scores)
    expected = score_segment_risk(loans, FEATURES, **SETTINGS).scores.read_all().to_pandas()
    expected = expected.sort_values("loan_id").reset_index(drop=True)
    assert len(written) == len(loans)
    assert written["loan_id"].is_unique
    assert written["is_training_row"].sum() == SETTINGS["sample_rows"]
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)


def test_a_relation_needs_its_session() -> None:
    relation = duckdb.connect().query("select 'L1' as loan_id")
    with pytest.raises(TypeError, match="session"):
        LoanSource.of(relation)


def test_checks_count_the_whole_book_not_one_batch(monkeypatch) -> None:
    monkeypatch.setattr(loan_source, "BATCH_ROWS", 100)
    settings = {**SETTINGS, "sample_rows": 100}  # nor the training sample
    loans = make_loans(1_000)
    loans.loc[[5, 450, 990], "age"] = np.nan  # one bad value in each of three batches
    with pytest.raises(ValueError, match="feature 'age' has 3 null or non-finite value"):
        score_segment_risk(loans, FEATURES, **settings)
    loans["age"] = 1.0
    loans.loc[[7, 700], "days_past_due"] = np.inf
    with pytest.raises(ValueError, match="'days_past_due' has 2 null or non-finite value"):
        score_segment_risk(loans, FEATURES, **settings)


def test_the_sample_depends_on_ids_only_and_honours_the_filter() -> None:
    loans = make_loans(3_000)
    shuffled = loans.sample(frac=1.0, random_state=11).reset_index(drop=True)
    first = LoanSource.of(loans).sample(["loan_id", "is_resolved"], 400, 7, '"is_resolved"')
    again = LoanSource.of(shuffled).sample(["loan_id", "is_resolved"], 400, 7, '"is_resolved"')
    ids = first.column("loan_id").to_pylist()
    assert ids == again.column("loan_id").to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == 400
    assert all(first.column("is_resolved").to_pylist())
    other_key = LoanSource.of(loans).sample(["loan_id"], 400, 8, '"is_resolved"')
    assert set(other_key.column("loan_id").to_pylist()) != set(ids)
    everything = LoanSource.of(loans).sample(["loan_id"], 10_000, 7)
    assert everything.num_rows == len(loans)


def test_hostile_column_names_stay_names() -> None:
    loans = make_loans(50).rename(columns={"age": 'age"; drop table loans; --'})
    source = LoanSource.of(loans)
    hostile = 'age"; drop table loans; --'
    assert source.check([hostile], [], action="score")["rows"] == 50
    batch = next(source.batches(["loan_id", hostile]))
    assert batch.column_names == ["loan_id", hostile]
    with pytest.raises(ValueError, match=r"missing column\(s\) x\) from loans; --"):
        source.check(["x) from loans; --"], [], action="score")
    assert source.counts({})["rows"] == 50
    labelled = LoanSource.of(loans.assign(**{"risk' or 1=1 --": True}))
    with pytest.raises(ValueError, match=r"label 'risk' or 1=1 --' has one class only"):
        labelled.check([hostile], [], action="score", label="risk' or 1=1 --", purpose="p")
    assert labelled.distinct([hostile])[0] == 50
    assert source.check([hostile], [], action="score", counted={"many": "true"})["many"] == 50
    with pytest.raises(ValueError, match=r"counted names \['bad_0', 'rows'\]"):
        source.check([hostile], [], action="score", counted={"rows": "true", "bad_0": "true"})


def test_distinct_counts_null_as_a_value() -> None:
    loans = pd.DataFrame({"loan_id": ["a", "b", "c", "d"], "source": ["x", None, "x", "y"]})
    assert LoanSource.of(loans).distinct(["source", "loan_id"]) == (
        4,
        {"source": {"x", "y", None}, "loan_id": {"a", "b", "c", "d"}},
    )


def test_batches_are_gathered_to_batch_rows_whatever_duckdb_hands_out() -> None:
    # DuckDB gives at most a row group (122,880 rows) per Arrow batch; a
    # scoring batch must still hold BATCH_ROWS loans, so both cores get a block.
    loans = pa.table({"loan_id": [f"L{i:07d}" for i in range(600_000)]})
    sizes = [table.num_rows for table in LoanSource.of(loans).batches(["loan_id"])]
    assert sum(sizes) == 600_000
    assert all(size >= loan_source.BATCH_ROWS for size in sizes[:-1])
    assert len(sizes) <= -(-600_000 // loan_source.BATCH_ROWS)


@pytest.mark.parametrize("n_rows", [0, 1, 3, 131_072, 262_144, 368_640, 1_000_003])
def test_chunks_cover_every_row_once_and_share_them_over_the_cores(n_rows: int) -> None:
    bounds = forest.chunks(n_rows)
    assert [row for start, stop in bounds for row in range(start, stop)] == list(range(n_rows))
    assert all(stop - start <= forest.CHUNK_ROWS for start, stop in bounds)
    if n_rows >= forest.CHUNK_ROWS:
        # A whole number of blocks per core, so no core scores alone at the end.
        assert len(bounds) % forest.workers() == 0
