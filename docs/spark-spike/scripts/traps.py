import time
t=time.time()
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled","false").config("spark.sql.ansi.enabled","false").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
print("session start %.1fs" % (time.time()-t))
tests = {
 "double_colon": "select null::string as a, '1'::int as b",
 "varchar_nolen": "select cast(1 as varchar) as a",
 "null_varchar": "select null::varchar as a",
 "doubled_quote": "select 'it''s' as a",
 "backslash_s": r"select regexp_replace('a  b', '\s+', ' ') as a",
 "raw_backslash_s": r"select regexp_replace('a  b', r'\s+', ' ') as a",
 "regexp_flag_g": "select regexp_replace('aXbX', 'X', '', 'g') as a",
 "double_quoted_ident": 'select "Borrower_ID" as a from (select 1 as Borrower_ID)',
 "row_number_no_order": "select row_number() over () as rn from range(3)",
 "isfinite": "select isfinite(1.0)",
 "try_cast_inf": "select try_cast('inf' as double) a, try_cast('Infinity' as double) b, try_cast('abc' as double) c, try_cast(' 12 ' as double) d",
 "hash": "select hash('L1') as h, xxhash64('L1') as x",
 "split_regex": "select split('a.b', '.') as a, split_part('a__b', '__', 1) as b",
 "array_1based": "select array(10,20,30)[0] as zero_idx, element_at(array(10,20,30), 1) as el1",
 "bool_or": "select bool_or(x) from values (true),(false) t(x)",
 "count_filter": "select count(*) filter (where x) from values (true),(false) t(x)",
 "any_value": "select any_value(x) from values (1),(2) t(x)",
 "arg_max": "select max_by(a, b), arg_max(a,b) from values ('x',1),('y',2) t(a,b)",
 "int_div": "select 7 / 2 as a, count(*) / 2 as b from range(3)",
 "list_contains": "select array_contains(split('a; b', '; '), 'b')",
 "union_by_name": "select 1 as a, 2 as b union all by name select 3 as b, 4 as a",
 "exclude": "select * except (b) from (select 1 as a, 2 as b)",
 "exclude_duck": "select * exclude (b) from (select 1 as a, 2 as b)",
 "unnest": "select unnest(array(1,2))",
 "initcap": "select initcap('hello   wORLD-x')",
 "ln_greatest": "select ln(2.0), greatest(1,2), least(ceil(31/30), 12)",
 "timezone": "select timezone('UTC', current_timestamp)",
 "quantile_cont": "select quantile_cont(x, 0.5) from range(5) t(x)",
 "percentile": "select percentile(id, 0.5) from range(5)",
 "generate_subscripts": "select generate_subscripts(array(1,2), 1)",
 "strpos": "select strpos('abc','b'), instr('abc','b'), position('b' in 'abc')",
 "concat_op": "select 'a' || 1",
 "unpivot": "select * from (select 1 as id, 2.0 as a, 3.0 as b) unpivot (v for k in (a, b))",
 "values_alias": "select d.* from (values ('a','b')) as d (x, y)",
 "string_agg": "select string_agg(x, ',') from values ('a'),('b') t(x)",
 "nulls_last": "select id from range(3) order by id desc nulls last",
 "is_distinct": "select 1 is distinct from null",
 "bigint_cast": "select cast(null as bigint), cast(2 as integer)",
 "unnest_listlit": "select explode(array('a')) as leaked",
 "information_schema": "select * from information_schema.columns limit 1",
}
for name, sql in tests.items():
    try:
        rows = spark.sql(sql).collect()
        print(f"OK   {name}: {rows}")
    except Exception as e:
        print(f"FAIL {name}: {str(e).splitlines()[0][:160]}")
