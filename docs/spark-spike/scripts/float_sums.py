import duckdb
from loan_recovery.spark.session import spark_session
spark = spark_session()
W = "/tmp/loan_recovery_spark/warehouse/staging.db/stg_loans"
q = "select loan_type, avg(monthly_income) a, sum(monthly_income * 1.1) s, avg(outstanding_loan_amount / loan_amount) r from {t} group by loan_type order by loan_type"
sp = spark.sql(q.format(t=f"parquet.`{W}`")).collect()
dk = duckdb.connect("/tmp/spike/staging_duck.duckdb", read_only=True).execute(q.format(t="staging.stg_loans")).fetchall()
for s, d in zip(sp, dk):
    print(s[0], "avg equal:", s[1] == d[1], "sum equal:", s[2] == d[2], "ratio avg equal:", s[3] == d[3], "diffs:", s[1]-d[1], s[2]-d[2], s[3]-d[3])
sp2 = spark.sql(q.format(t=f"parquet.`{W}`")).collect()
print("spark run-to-run identical:", sp == sp2)
