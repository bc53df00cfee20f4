{#-
    Every ref in this project that reads up the layers, as a list of
    {model, layer, parent, parent_layer}. Layers only read downward: seeds,
    then staging, then intermediate, then the marts; a model may read its
    own layer or one below, never one above (an intermediate that refs a
    mart makes the analysts' tables an input of the logic that builds them,
    so a change made for readers would silently change the strategy). A
    model's layer is its folder under models/; a model outside the three
    layer folders has no place in that order and is listed too.

    Read from dbt's graph, so it is empty while dbt parses (execute is
    false) and complete when the singular test
    assert_layers_read_only_downward runs.
-#}
{% macro refs_up_the_layers() %}
    {%- set layer_order = {'seed': 0, 'staging': 1, 'intermediate': 2, 'marts': 3} -%}
    {%- set offending = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.package_name == project_name -%}
            {%- set layer = node.fqn[1] if node.fqn | length > 2 else 'none' -%}
            {%- for parent_id in node.depends_on.nodes -%}
                {%- set parent = graph.nodes.get(parent_id) -%}
                {%- if parent is none -%}
                    {%- set parent_layer = 'unknown' -%}
                {%- elif parent.resource_type == 'seed' -%}
                    {%- set parent_layer = 'seed' -%}
                {%- else -%}
                    {%- set parent_layer = parent.fqn[1] if parent.fqn | length > 2 else 'none' -%}
                {%- endif -%}
                {%- if layer not in layer_order or parent_layer not in layer_order or layer_order[parent_layer] > layer_order[layer] -%}
                    {%- do offending.append({'model': node.name, 'layer': layer, 'parent': parent_id.split('.')[-1], 'parent_layer': parent_layer}) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(offending) }}
{% endmacro %}
