from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled","false").config("spark.sql.ansi.enabled","false").getOrCreate()
spark.sparkContext.setLogLevel("OFF")
tests = {
 "varchar_nolen": "select cast(1 as varchar) as a",
 "null_varchar": "select null::varchar as a",
 "union_by_name": "select 1 as a, 2 as b union all by name select 3 as b, 4 as a",
 "exclude_duck": "select * exclude (b) from (select 1 as a, 2 as b)",
 "max_by": "select max_by(a, b) from values ('x',1),('y',2) t(a,b)",
 "regexp_like_full": "select 'abc' rlike '^a.c$'",
 "regexp_extract_all": "select regexp_extract_all('a,b,', '([^,]*),', 1)",
 "percentile_cont": "select percentile_cont(0.5) within group (order by id) from range(5)",
 "from_utc": "select to_utc_timestamp(current_timestamp(), 'UTC') is not null",
 "hash_mod_neg": "select hash('L1') % 5, pmod(hash('L1'), 5)",
 "md5": "select md5(cast('L1' as string))",
 "sum_window_rows": "select sum(id) over (order by id rows unbounded preceding) from range(3)",
 "int_cast_in_case": "select cast('12.5' as double) <> floor(cast('12.5' as double))",
 "table_fn_parquet_direct": "select count(*) from parquet.`/tmp/book.parquet`",
 "metadata_row_index": "select _metadata.row_index, _metadata.file_path, Loan_ID from parquet.`/tmp/book.parquet` limit 2",
 "metadata_row_index_read": "select min(_metadata.row_index), max(_metadata.row_index), count(distinct _metadata.file_path) from parquet.`/tmp/book.parquet`",
 "describe_query": "describe query select * from parquet.`/tmp/book.parquet`",
 "try_cast_str_int": "select try_cast(Age as double) from parquet.`/tmp/book.parquet` limit 1",
 "union_by_name_dist": "select 1 as a, 2 as b union all corresponding select 3 as b, 4 as a",
 "struct_lit": "select array(1.0, 2.0) as l",
 "bool_to_double": "select cast(true as double)",
 "string_in_num": "select cast(1.5 as string), cast(1e9 as string), cast(12.0 as string)",
}
for name, sql in tests.items():
    try:
        rows = spark.sql(sql).collect()
        print(f"OK   {name}: {rows[:3]}")
    except Exception as e:
        msg = str(e).strip().splitlines()
        print(f"FAIL {name}: {' | '.join(m for m in msg[:2])[:220]}")
