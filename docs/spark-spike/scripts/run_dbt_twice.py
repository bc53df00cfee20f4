import json, sys, time
from loan_recovery.spark.session import spark_session
from loan_recovery.spark.submission import install
from dbt.cli.main import dbtRunner
t = time.monotonic(); spark_session(); print(f"session {time.monotonic()-t:.1f}s", flush=True)
install()
args = sys.argv[1:]
for attempt in (1, 2):
    t = time.monotonic()
    res = dbtRunner().invoke(args)
    wall = time.monotonic() - t
    rr = json.load(open("/tmp/spike/target_twice/run_results.json"))
    models = [r for r in rr["results"] if r["unique_id"].startswith("model.")]
    tests = [r for r in rr["results"] if r["unique_id"].startswith("test.")]
    print(f"[{attempt}] success={res.success} wall={wall:.1f}s nodes={len(rr['results'])} "
          f"models: {', '.join(m['unique_id'].split('.')[-1] + '=' + format(m['execution_time'], '.1f') + 's' for m in models)} "
          f"tests: n={len(tests)} sum={sum(x['execution_time'] for x in tests):.1f}s "
          f"median={sorted(x['execution_time'] for x in tests)[len(tests)//2] if tests else 0:.2f}s", flush=True)
