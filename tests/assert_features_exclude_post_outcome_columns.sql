-- A feature recorded after the outcome would leak it into the risk model.
{%- set leaked = [] -%}
{%- for feature in reference('cluster_features') if feature in reference('post_outcome_columns') -%}
{%- do leaked.append(feature) -%}
{%- endfor %}
select unnest({{ leaked }}::varchar[]) as leaked_feature
