import os, subprocess, sys, time
from pathlib import Path
import numpy as np, pyarrow as pa
from loan_recovery.spark import local_cluster
from loan_recovery.spark.arrow_scoring import map_scores, payload_bytes

OUT = pa.schema([("id", pa.int64()), ("score", pa.float64())])
def score(batch, arrays):
    return pa.RecordBatch.from_arrays([batch.column("id"), pa.array(batch.column("id").to_numpy() * arrays["w"][0])], schema=OUT)

def listening():
    out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    return [l.split()[3] for l in out.splitlines()[1:] if "java" in l]

mode = sys.argv[1]
work = Path(f"/tmp/spike/cluster_{mode}")
t = time.monotonic()
cm = local_cluster.standalone(work) if mode == "standalone" else local_cluster.connect_server(work)
with cm as url:
    print(f"{mode} up at {url} in {time.monotonic()-t:.1f}s; java listening on {listening()}")
    from pyspark.sql import SparkSession
    t = time.monotonic()
    if mode == "standalone":
        from loan_recovery.spark.session import spark_session
        spark = spark_session(master=url)
    else:
        os.environ["SPARK_REMOTE"] = url
        spark = SparkSession.builder.getOrCreate()
    print(f"client session in {time.monotonic()-t:.1f}s: {type(spark).__module__}")
    t = time.monotonic()
    print("query:", spark.sql("select count(*) as n, sum(id) as s from range(1000000)").collect(), f"{time.monotonic()-t:.1f}s")
    t = time.monotonic()
    scored = map_scores(spark.range(100000), score, payload_bytes({"w": np.array([0.5])}), OUT)
    table = scored.toArrow()
    print("mapInArrow rows", table.num_rows, "sum", pa.compute.sum(table.column("score")).as_py(), f"{time.monotonic()-t:.1f}s")
    if mode == "connect":
        print("has sparkContext:", end=" ")
        try:
            spark.sparkContext; print("yes")
        except Exception as e:
            print("no:", type(e).__name__, str(e).splitlines()[0][:100])
        # what dbt-spark's session cursor does for each statement
        b = SparkSession.builder.enableHiveSupport()
        for k, v in {"spark.sql.ansi.enabled": "false", "spark.sql.session.timeZone": "UTC"}.items():
            b = b.config(k, v)
        s2 = b.getOrCreate()
        print("dbt-spark builder under SPARK_REMOTE ->", type(s2).__module__, "same session:", s2 is spark,
              s2.sql("select 1 as one").collect())
        try:
            s3 = SparkSession.builder.config("spark.sql.catalogImplementation", "in-memory").getOrCreate()
            print("static conf on existing connect session: accepted")
        except Exception as e:
            print("static conf on existing connect session:", type(e).__name__, str(e).splitlines()[0][:160])
    spark.stop()
    t = time.monotonic()
print(f"stopped in {time.monotonic()-t:.1f}s; java processes left: ",
      [l for l in subprocess.run(['ps','-eo','pid,args'], capture_output=True, text=True).stdout.splitlines() if 'java' in l and ('deploy.master' in l or 'deploy.worker' in l or 'SparkConnectServer' in l)])
