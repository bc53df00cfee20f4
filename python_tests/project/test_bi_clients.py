"""What a long-running BI client sees when a new build is published over the served file.

A publish builds the new file elsewhere, hard-links the served file to
``<served>.previous`` and renames the new file over the served name. The tests
here mirror that with two tiny files (they do not import the publish module).

DuckDB's Python client keeps one database instance per resolved path: while any
connection to the path is open in the process, ``duckdb.connect(path)`` returns
a connection to that instance, i.e. to the file that was open before the
rename. Pooled SQLAlchemy engines on the file URL therefore keep serving the
old build, whatever ``pool_recycle``, ``pool_pre_ping`` or ``NullPool`` says.

``make_bi_engine`` is the recipe for docs/serving.md: every pooled connection
is an in-memory database that attaches the served file, and every checkout
attaches it again if the served name now points to another file. Guarantee:

- the next checkout after a publish reads the new build, even while other
  connections (checked out or idle) still hold the old one;
- a connection checked out before the publish keeps reading the build it had,
  across queries and transactions, until it is returned to the pool.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

try:
    import duckdb_engine  # noqa: F401  (the "duckdb://" SQLAlchemy dialect)
    import sqlalchemy as sa
    from sqlalchemy import event
    from sqlalchemy.pool import NullPool, QueuePool
except ImportError as missing:  # pragma: no cover - a broken dev install must not pass as skips
    pytest.fail(
        f"test_bi_clients.py needs duckdb-engine and SQLAlchemy ({missing}); "
        "install the dev extras: pip install -e '.[dev]'",
        pytrace=False,
    )

V1 = "v1.0.0"
BUILD_QUERY = "select build_id from build_info"

# --------------------------------------------------------------------------- the recipe

ATTACHED_AS = "loan_recovery"


def make_bi_engine(served_path: str | os.PathLike[str], **engine_options: Any) -> sa.Engine:
    """A pooled SQLAlchemy engine whose next checkout after a publish reads the new build.

    Each pooled connection is its own in-memory DuckDB database (so DuckDB's
    per-path instance cache is never involved) that attaches the served file
    read-only as ``loan_recovery`` and makes it the default catalog. On every
    checkout the served name is stat()ed; if it now names another file (a
    publish or a rollback renamed one over it), the connection detaches the old
    build and attaches the served file again. A checked-out connection is never
    changed, so it reads one build from checkout to return.
    """
    path = os.path.abspath(served_path)
    literal = path.replace("'", "''")
    engine = sa.create_engine("duckdb:///:memory:", poolclass=QueuePool, **engine_options)

    @event.listens_for(engine, "checkout")
    def attach_served_build(dbapi_connection: Any, connection_record: Any, _proxy: Any) -> None:
        served = os.stat(path)  # before ATTACH: a rename in between only causes one more attach
        build = (served.st_dev, served.st_ino)
        if connection_record.info.get("attached_build") == build:
            return
        connection_record.info.pop("attached_build", None)
        dbapi_connection.execute("USE memory")
        dbapi_connection.execute(f"DETACH DATABASE IF EXISTS {ATTACHED_AS}")
        dbapi_connection.execute(f"ATTACH '{literal}' AS {ATTACHED_AS} (READ_ONLY)")
        dbapi_connection.execute(f"USE {ATTACHED_AS}")
        connection_record.info["attached_build"] = build

    return engine


# --------------------------------------------------------------------------- fixtures


def write_build(path: Path, build_id: str, rows: int = 3) -> Path:
    """A finished, checkpointed build in DuckDB 1.x storage with one build_info row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path), config={"storage_compatibility_version": V1}) as connection:
        connection.execute("create table build_info (build_id varchar)")
        connection.execute("insert into build_info values (?)", [build_id])
        connection.execute(
            f"create table loans as select range as loan_id, ? as build_id from range({rows})",
            [build_id],
        )
        connection.execute("checkpoint")
    return path


def publish(new_file: Path, served: Path) -> None:
    """What a publish does to the names (loan_recovery.serving.swap.swap_in's three steps).

    Not swap_in itself: its checks open the served file with plain
    duckdb.connect, which in this process would meet the test's own
    duckdb-engine connections ("different configuration"); a real publish
    runs in its own process.
    """
    partial = served.with_name(served.name + ".previous.partial")
    partial.unlink(missing_ok=True)
    os.link(served, partial)
    os.replace(new_file, served)
    os.replace(partial, served.with_name(served.name + ".previous"))


def build_of(connection: Any) -> str:
    """The build a SQLAlchemy or plain DuckDB connection reads."""
    if isinstance(connection, sa.Connection):
        return connection.exec_driver_sql(BUILD_QUERY).scalar_one()
    return connection.execute(BUILD_QUERY).fetchone()[0]


def dbapi_of(connection: sa.Connection) -> Any:
    """The pooled DuckDB connection behind a SQLAlchemy connection."""
    return connection.connection.dbapi_connection


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """The served name, holding build "old"."""
    served = tmp_path / "loan_recovery.duckdb"
    old = write_build(
        tmp_path / "loan_recovery.duckdb.builds" / "old" / "loan_recovery.duckdb", "old"
    )
    os.replace(old, served)
    return served


@pytest.fixture
def publish_new(served: Path) -> Callable[[], None]:
    """Publish build "new" over the served name."""
    new = write_build(
        served.parent / "loan_recovery.duckdb.builds" / "new" / "loan_recovery.duckdb", "new"
    )
    return lambda: publish(new, served)


@pytest.fixture
def engines() -> Iterator[Callable[..., sa.Engine]]:
    """Make engines (make_bi_engine or sa.create_engine) that are disposed after the test."""
    made: list[sa.Engine] = []

    def make(factory: Callable[..., sa.Engine], *args: Any, **kwargs: Any) -> sa.Engine:
        engine = factory(*args, **kwargs)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


# --------------------------------------------------------------------------- the recipe's guarantee


def test_next_checkout_reads_new_build_while_old_connection_is_open(
    served: Path, publish_new: Callable[[], None], engines: Callable[..., sa.Engine]
) -> None:
    engine = engines(make_bi_engine, served)
    held = engine.connect()  # e.g. a long dashboard query, still running during the publish
    assert build_of(held) == "old"
    with engine.connect() as idle:
        assert build_of(idle) == "old"
        pooled = dbapi_of(idle)
    assert engine.pool.checkedin() == 1  # `idle` is back in the pool, attached to the old build

    publish_new()

    with engine.connect() as next_checkout:
        assert dbapi_of(next_checkout) is pooled  # the same pooled DuckDB connection, reused
        assert build_of(next_checkout) == "new"
        with engine.connect() as another:  # a connection the pool opens now
            assert build_of(another) == "new"
    assert build_of(held) == "old"  # at the same moment, the held connection still reads old
    held.close()


def test_connection_checked_out_before_publish_reads_old_build_until_returned(
    served: Path, publish_new: Callable[[], None], engines: Callable[..., sa.Engine]
) -> None:
    engine = engines(make_bi_engine, served)
    with engine.connect() as connection:
        assert build_of(connection) == "old"  # begins a transaction
        publish_new()
        assert build_of(connection) == "old"
        connection.commit()
        assert build_of(connection) == "old"  # a new transaction, the same checkout: still old
        assert connection.exec_driver_sql("select count(*) from loans").scalar_one() == 3
        pooled = dbapi_of(connection)
    with engine.connect() as connection:  # returned and checked out again
        assert dbapi_of(connection) is pooled
        assert build_of(connection) == "new"


def test_rollback_to_previous_is_seen_on_next_checkout(
    served: Path, publish_new: Callable[[], None], engines: Callable[..., sa.Engine]
) -> None:
    engine = engines(make_bi_engine, served)
    with engine.connect() as connection:
        assert build_of(connection) == "old"
    publish_new()
    with engine.connect() as connection:
        assert build_of(connection) == "new"

    previous = served.with_name(served.name + ".previous")  # serve .previous again
    keep = served.with_name(served.name + ".rollback")
    os.link(served, keep)
    os.replace(previous, served)
    os.replace(keep, previous)

    with engine.connect() as connection:
        assert build_of(connection) == "old"


def test_checkouts_during_repeated_publishes_each_read_one_whole_build(
    served: Path, engines: Callable[..., sa.Engine]
) -> None:
    rows = {"old": 3, "a": 100, "b": 200}
    masters = [
        write_build(served.parent / "masters" / f"{name}.duckdb", name, rows[name]) for name in "ab"
    ]
    stop = threading.Event()
    publishes = 0
    failures: list[BaseException] = []

    def keep_publishing() -> None:
        nonlocal publishes
        try:
            while not stop.is_set():
                incoming = served.with_name(served.name + ".incoming")
                os.link(masters[publishes % 2], incoming)
                publish(incoming, served)
                publishes += 1
                time.sleep(0.0005)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    engine = engines(make_bi_engine, served, pool_size=2)
    publisher = threading.Thread(target=keep_publishing)
    publisher.start()
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                first = build_of(connection)
                count, in_loans = connection.exec_driver_sql(
                    "select count(*), string_agg(distinct build_id) from loans"
                ).one()
                last = build_of(connection)
            assert (first, in_loans, last, count) == (first, first, first, rows[first])
            seen.add(first)
    finally:
        stop.set()
        publisher.join()
    assert not failures, failures
    assert publishes > 10
    assert len(seen) >= 2, f"checkouts never straddled a publish: {seen}, {publishes} publishes"


# ------------------------------------------------------------------------ why the old advice fails


def test_plain_connect_reuses_the_open_instance_until_every_connection_is_closed(
    served: Path, publish_new: Callable[[], None]
) -> None:
    first = duckdb.connect(str(served), read_only=True)
    alias = served.with_name("alias.duckdb")
    alias.symlink_to(served)
    publish_new()
    assert build_of(first) == "old"
    second = duckdb.connect(str(served), read_only=True)
    assert build_of(second) == "old"  # the instance cache, not the file the name points to now
    via_symlink = duckdb.connect(str(alias), read_only=True)
    assert build_of(via_symlink) == "old"  # keyed by the resolved path, so a symlink is no way out
    for connection in (first, second, via_symlink):
        connection.close()
    with duckdb.connect(str(served), read_only=True) as after_all_closed:
        assert build_of(after_all_closed) == "new"


def test_instance_cache_is_keyed_by_resolved_path_not_by_file(tmp_path: Path) -> None:
    """A served name that is a symlink, re-pointed by a publish, would escape the cache."""
    old = write_build(tmp_path / "builds" / "old.duckdb", "old")
    new = write_build(tmp_path / "builds" / "new.duckdb", "new")
    served = tmp_path / "loan_recovery.duckdb"
    served.symlink_to(old)
    with duckdb.connect(str(served), read_only=True) as first:
        incoming = tmp_path / "incoming.link"
        incoming.symlink_to(new)
        os.replace(incoming, served)  # the name now resolves to another path
        with duckdb.connect(str(served), read_only=True) as second:
            assert (build_of(first), build_of(second)) == ("old", "new")


def _file_url(served: Path) -> str:
    return f"duckdb:///{served}?access_mode=read_only"


def test_pooled_file_engine_with_pool_recycle_keeps_serving_old_build(
    served: Path, publish_new: Callable[[], None], engines: Callable[..., sa.Engine]
) -> None:
    engine = engines(sa.create_engine, _file_url(served), pool_recycle=1)
    first, second = engine.connect(), engine.connect()  # a BI server has several connections
    assert (build_of(first), build_of(second)) == ("old", "old")
    before = {id(dbapi_of(first)), id(dbapi_of(second))}
    first.close()
    second.close()

    publish_new()
    time.sleep(1.2)  # both pooled connections are now past pool_recycle

    first, second = engine.connect(), engine.connect()
    assert {id(dbapi_of(first)), id(dbapi_of(second))}.isdisjoint(before)  # both reconnected...
    assert (build_of(first), build_of(second)) == ("old", "old")  # ...to the old build
    first.close()
    second.close()
    time.sleep(1.2)
    with engine.connect() as connection:  # and it never recovers: always another one is open
        assert build_of(connection) == "old"


def test_pooled_file_engine_with_one_connection_and_pool_recycle_does_see_new_build(
    served: Path, publish_new: Callable[[], None], engines: Callable[..., sa.Engine]
) -> None:
    """pool_recycle works only if the recycled connection was the path's last open one."""
    engine = engines(sa.create_engine, _file_url(served), pool_recycle=1)
    with engine.connect() as connection:
        assert build_of(connection) == "old"
    publish_new()
    time.sleep(1.2)
    with engine.connect() as connection:
        assert build_of(connection) == "new"


@pytest.mark.parametrize(
    "options",
    [{}, {"pool_pre_ping": True}, {"pool_size": 5}],
    ids=["default-QueuePool", "pool_pre_ping", "several-pooled"],
)
def test_pooled_file_engine_reuses_old_build(
    options: dict[str, Any],
    served: Path,
    publish_new: Callable[[], None],
    engines: Callable[..., sa.Engine],
) -> None:
    engine = engines(sa.create_engine, _file_url(served), **options)
    opened = [engine.connect() for _ in range(3)]
    assert [build_of(c) for c in opened] == ["old"] * 3
    for connection in opened:
        connection.close()
    publish_new()
    checkouts = [engine.connect() for _ in range(4)]  # three pooled, one new
    assert [build_of(c) for c in checkouts] == ["old"] * 4
    for connection in checkouts:
        connection.close()


def test_nullpool_file_engine_reads_old_build_while_any_connection_is_open(
    served: Path, publish_new: Callable[[], None], engines: Callable[..., sa.Engine]
) -> None:
    engine = engines(sa.create_engine, _file_url(served), poolclass=NullPool)
    held = engine.connect()
    assert build_of(held) == "old"
    publish_new()
    with engine.connect() as concurrent:  # a fresh duckdb.connect(), yet the old build
        assert build_of(concurrent) == "old"
    held.close()
    with engine.connect() as alone:  # only once no connection to the path is open
        assert build_of(alone) == "new"


def test_dispose_does_not_help_while_a_connection_is_checked_out(
    served: Path, publish_new: Callable[[], None], engines: Callable[..., sa.Engine]
) -> None:
    engine = engines(sa.create_engine, _file_url(served))
    held = engine.connect()
    assert build_of(held) == "old"
    publish_new()
    engine.dispose()
    with engine.connect() as connection:
        assert build_of(connection) == "old"
    held.close()


# --------------------------------------------------------------------------- reflection


@pytest.mark.dbt
@pytest.mark.parametrize("engine_kind", ["file URL", "make_bi_engine"])
def test_sqlalchemy_reflects_every_served_table(
    sample_build: Any, tmp_path: Path, engines: Callable[..., sa.Engine], engine_kind: str
) -> None:
    # What Superset does when a dataset is added: reflect the table (columns,
    # primary and foreign keys, unique constraints) through SQLAlchemy's
    # inspector, on the pinned SQLAlchemy and duckdb-engine (pyproject.toml).
    served = tmp_path / "loan_recovery.duckdb"
    shutil.copy(sample_build.database, served)
    with duckdb.connect(str(served), read_only=True) as connection:
        expected = {
            table: [name for (name,) in connection.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'main' and table_name = ? order by ordinal_position",
                [table],
            ).fetchall()]
            for (table,) in connection.execute(
                "select table_name from information_schema.tables where table_schema = 'main'"
            ).fetchall()
        }  # fmt: skip
    assert len(expected) >= 10
    if engine_kind == "file URL":
        engine = engines(sa.create_engine, f"duckdb:///{served}", connect_args={"read_only": True})
    else:
        engine = engines(make_bi_engine, served)
    inspector = sa.inspect(engine)
    reflected: dict[str, object] = {}
    for table in sorted(expected):
        try:
            columns = [column["name"] for column in inspector.get_columns(table)]
            inspector.get_pk_constraint(table)
            inspector.get_foreign_keys(table)
            inspector.get_unique_constraints(table)
            inspector.get_indexes(table)
            inspector.get_check_constraints(table)
            inspector.get_table_comment(table)
            loaded = sa.Table(table, sa.MetaData(), autoload_with=engine)
            reflected[table] = columns if list(loaded.columns.keys()) == columns else "differs"
        except (sa.exc.SQLAlchemyError, NotImplementedError) as error:
            # duckdb-engine turns some failures into a bare NotImplementedError
            cause = error if str(error) else error.__cause__
            reflected[table] = f"{type(error).__name__}: {str(cause).splitlines()[0][:160]}"
    assert reflected == expected
