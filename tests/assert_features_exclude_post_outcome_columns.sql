-- No feature list names a column recorded after the outcome or a protected
-- attribute (the list-level guard; loan_recovery.modelling.sentinel guards the data).
{%- set features = reference('cluster_features') + reference('ratio_features') + reference('outcome_categories') -%}
{%- set banned = reference('post_outcome_columns') + reference('protected_attributes') -%}
{%- set leaked = [] -%}
{%- for feature in features if feature in banned -%}
{%- do leaked.append(feature) -%}
{%- endfor %}
select unnest({{ leaked }}::varchar[]) as leaked_feature
