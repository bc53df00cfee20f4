import os, subprocess, sys, time
from pathlib import Path
from loan_recovery.spark import local_cluster
project, args = sys.argv[1], sys.argv[2:]
t = time.monotonic()
with local_cluster.connect_server(Path("/tmp/spike/cluster_dbt")) as url:
    print(f"connect server up in {time.monotonic()-t:.1f}s", flush=True)
    t = time.monotonic()
    rc = subprocess.run([sys.executable, "-m", "loan_recovery.spark.dbt_session", *args],
                        cwd=project, env={**os.environ, "SPARK_REMOTE": url}).returncode
    print(f"dbt over connect: rc={rc} in {time.monotonic()-t:.1f}s", flush=True)
