import sys, duckdb
db, W = sys.argv[1], sys.argv[2]
tables = [t.split(".") for t in sys.argv[3:]]
con = duckdb.connect(db, read_only=True)
q = lambda s: con.execute(s).fetchall()
for schema, table in tables:
    spark_rel = f"read_parquet('{W}/{schema}.db/{table}/*.parquet')"
    types_d = q(f"select column_name, column_type from (describe {schema}.{table})")
    types_s = dict(q(f"select column_name, column_type from (describe select * from {spark_rel})"))
    cols = ", ".join(f'"{c}"' for c, _ in types_d)
    n = q(f"select count(*) from {schema}.{table}")[0][0]
    a = q(f"select count(*) from (select {cols} from {schema}.{table} except all select {cols} from {spark_rel})")[0][0]
    b = q(f"select count(*) from (select {cols} from {spark_rel} except all select {cols} from {schema}.{table})")[0][0]
    diff = [(c, t, types_s.get(c)) for c, t in types_d if types_s.get(c) != t]
    print(f"{schema}.{table}: rows={n} duckdb-only={a} spark-only={b} type_diffs={diff}")
