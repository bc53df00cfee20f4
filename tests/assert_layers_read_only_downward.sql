-- Layers only read downward (macro refs_up_the_layers): one row per ref
-- from a model to a layer above its own, e.g. an intermediate that refs a
-- mart. Judged on dbt's graph, so it fails the build as soon as such a ref
-- is added, before any data is read.
with

offending_refs as (

    select
        cast(null as varchar) as model_name,
        cast(null as varchar) as model_layer,
        cast(null as varchar) as parent_name,
        cast(null as varchar) as parent_layer
    where false
    {%- for offending in refs_up_the_layers() %}
    union all
    select
        '{{ offending.model }}' as model_name,
        '{{ offending.layer }}' as model_layer,
        '{{ offending.parent }}' as parent_name,
        '{{ offending.parent_layer }}' as parent_layer
    {%- endfor %}

)

select * from offending_refs
