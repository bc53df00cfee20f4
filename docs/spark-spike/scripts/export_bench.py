"""Q6: 1M-row mart from Spark into a new DuckDB file: Arrow vs Parquet."""
import glob, os, shutil, time
from pathlib import Path
import duckdb
from loan_recovery.spark.session import spark_session
from loan_recovery.spark.to_duckdb import export_tables

ROWS = 1_000_000
t = time.monotonic()
spark = spark_session()
print(f"session {time.monotonic()-t:.1f}s")
spark.sql("create database if not exists bench")
# A recovery_strategies-shaped table: 30 columns, ids and words as text.
cols = ["concat('LN_', cast(id as string)) as loan_id", "concat('B_', cast(id % 9973 as string)) as borrower_id",
        "cast(id % 4 as int) as segment_id", "element_at(array('Low Income, Low Loan','High Income, High Loan','Mid','Other'), cast(id % 4 as int) + 1) as segment_name",
        "id % 3 = 0 as is_resolved", "id % 3 <> 0 as is_worked"]
cols += [f"rand({i}) as d{i}" for i in range(12)]
cols += [f"element_at(array('legal','settlement','reminders'), cast(id % 3 as int) + 1) as s{i}" for i in range(6)]
cols += [f"cast(id % {97 + i} as int) as n{i}" for i in range(5)]
cols += ["current_timestamp() as built_at"]
t = time.monotonic()
spark.sql(f"create table bench.mart using parquet as select {', '.join(cols)} from range({ROWS})")
print(f"spark wrote the 1M-row table: {time.monotonic()-t:.1f}s")

for attempt in (1, 2):
    db = Path(f"/tmp/spike/export_arrow_{attempt}.duckdb"); db.unlink(missing_ok=True)
    t = time.monotonic()
    n = export_tables(spark, {"main.recovery_strategies": "bench.mart"}, db)
    print(f"[{attempt}] toArrow -> duckdb create table: {time.monotonic()-t:.2f}s {n} size={db.stat().st_size/1e6:.0f}MB")

# the warehouse files themselves (local Spark only)
location = spark.sql("describe table extended bench.mart").where("col_name = 'Location'").collect()[0].data_type
path = location.removeprefix("file:")
for attempt in (1, 2):
    db = Path(f"/tmp/spike/export_parquet_{attempt}.duckdb"); db.unlink(missing_ok=True)
    t = time.monotonic()
    con = duckdb.connect(str(db), config={"storage_compatibility_version": "v1.0.0"})
    con.execute(f"create table main.recovery_strategies as select * from read_parquet('{path}/*.parquet')")
    con.execute("checkpoint"); con.close()
    print(f"[{attempt}] duckdb read_parquet of the warehouse files: {time.monotonic()-t:.2f}s")

# Spark writes a fresh Parquet export, DuckDB reads it
for attempt in (1, 2):
    out = f"/tmp/spike/export_pq_{attempt}"; shutil.rmtree(out, ignore_errors=True)
    db = Path(f"/tmp/spike/export_pq_{attempt}.duckdb"); db.unlink(missing_ok=True)
    t = time.monotonic()
    spark.table("bench.mart").write.parquet(out)
    con = duckdb.connect(str(db), config={"storage_compatibility_version": "v1.0.0"})
    con.execute(f"create table main.recovery_strategies as select * from read_parquet('{out}/*.parquet')")
    con.execute("checkpoint"); con.close()
    print(f"[{attempt}] spark write parquet + duckdb read_parquet: {time.monotonic()-t:.2f}s")

con = duckdb.connect("/tmp/spike/export_arrow_2.duckdb", read_only=True)
types = con.execute("select column_name, data_type from information_schema.columns where table_name='recovery_strategies' and column_name in ('loan_id','segment_id','is_resolved','d0','n0','built_at')").fetchall()
print("types via arrow:", types)
con2 = duckdb.connect("/tmp/spike/export_parquet_2.duckdb", read_only=True)
print("types via parquet:", con2.execute("select column_name, data_type from information_schema.columns where table_name='recovery_strategies' and column_name in ('built_at','loan_id')").fetchall())
con.execute("attach '/tmp/spike/export_parquet_2.duckdb' as p (read_only)")
print("arrow vs parquet EXCEPT ALL both ways:", con.execute("select (select count(*) from (select * from main.recovery_strategies except all select * from p.main.recovery_strategies)), (select count(*) from (select * from p.main.recovery_strategies except all select * from main.recovery_strategies))").fetchall())
