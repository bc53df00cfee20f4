-- Every feature of the model that drove the strategy belongs to exactly one
-- reason code of reason_code_catalog: a feature no code names would never be
-- a reason, one named twice would count twice.
with

columns_explained as (

    select column_name
    from information_schema.columns
    where
        table_schema = '{{ ref("int_loan_contributions").schema }}'
        and table_name = 'int_loan_contributions'
        and column_name not in ('loan_id', 'bias')

),

catalog_features as (

    select
        reason_code,
        unnest(string_split(features, '|')) as feature
    from {{ ref('reason_code_catalog') }}
    where reason_kind = 'raises_risk'

),

matches as (

    select
        columns_explained.column_name,
        count(catalog_features.reason_code) as codes
    from columns_explained
    left join catalog_features on split_part(columns_explained.column_name, '__', 1) = catalog_features.feature
    group by columns_explained.column_name

)

select * from matches
where codes <> 1
