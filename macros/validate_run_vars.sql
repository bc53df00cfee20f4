{#-
    Runs before anything is built (on-run-start). Per-run settings arrive
    from --vars as user text, so they are judged here, before any model
    reads them:
    - `reference` (the project's fixed facts) may not be overridden: a
      changed category list would silently re-label every loan;
    - no --vars value may hold Jinja: dbt renders string vars as templates,
      so '{{ ... }}' in a value would run as code;
    - every number is bounded on both sides: thresholds in [0, 1],
      settlement not above legal; counts, trees, sample rows, the seed and
      capacities are whole numbers in a generous range (a value beyond it
      would only fail deep inside a model); the ratio is in [1, 100]; the
      path is text. python_tests/project/test_run_var_bounds.py checks every
      numeric setting on both sides.
    Every message starts with "invalid --vars", which `loan-recovery build`
    reports with exit code 2.
-#}
{% macro validate_run_vars() %}
    {%- set given = invocation_args_dict.get('vars') or {} -%}
    {%- if given is not mapping -%}
        {%- set given = fromyaml(given) or {} -%}
    {%- endif -%}
    {%- if 'reference' in given -%}
        {{ exceptions.raise_compiler_error("invalid --vars: 'reference' holds the project's fixed facts (columns, categories, features) and may not be overridden") }}
    {%- endif -%}
    {%- for name, value in given.items() -%}
        {%- set text = value | tojson -%}
        {%- if '{{' in text or '{%' in text or '{#' in text -%}
            {{ exceptions.raise_compiler_error("invalid --vars: " ~ name ~ " holds Jinja ('{{', '{%' or '{#'); values are data, never templates") }}
        {%- endif -%}
    {%- endfor -%}

    {#- Whole-number settings and their ranges: generous, but a value beyond them
        would only fail deep inside a model (a forest of 1e20 trees, a sample
        larger than any book, a seed numpy cannot take). -#}
    {%- set whole_numbers = [
        ('n_segments', 2, 1000),
        ('segmentation_sample_rows', 2, 10000000),
        ('scoring_sample_rows', 2, 10000000),
        ('outcome_sample_rows', 2, 10000000),
        ('scoring_trees', 1, 1000),
        ('outcome_trees', 1, 1000),
        ('random_state', 0, 4294967295),
        ('min_resolved_loans', 2, 10000000),
    ] -%}
    {%- for name, lowest, highest in whole_numbers -%}
        {%- set value = var(name) -%}
        {%- if value is not number or value is boolean or value < lowest or value > highest or value != value | int -%}
            {{ exceptions.raise_compiler_error("invalid --vars: " ~ name ~ " must be a whole number from " ~ lowest ~ " to " ~ highest ~ ", got " ~ value) }}
        {%- endif -%}
    {%- endfor -%}

    {%- set ratio = var('max_outstanding_to_loan_ratio') -%}
    {%- if ratio is not number or ratio is boolean or not (1 <= ratio <= 100) -%}
        {{ exceptions.raise_compiler_error("invalid --vars: max_outstanding_to_loan_ratio must be a number from 1 to 100, got " ~ ratio) }}
    {%- endif -%}

    {%- for name in ['legal_capacity', 'settlement_capacity'] -%}
        {%- set value = var(name) -%}
        {%- if value is not none and (value is not number or value is boolean or value < 0 or value > 1000000000 or value != value | int) -%}
            {{ exceptions.raise_compiler_error("invalid --vars: " ~ name ~ " must be a whole number from 0 to 1000000000, or null for unlimited, got " ~ value) }}
        {%- endif -%}
    {%- endfor -%}

    {%- if var('strategy_score') not in ['outcome', 'segment'] -%}
        {{ exceptions.raise_compiler_error("invalid --vars: strategy_score must be outcome or segment, got " ~ var('strategy_score')) }}
    {%- endif -%}

    {#- The pattern is loan_recovery.modelling.registry.VERSION's (a unit test keeps the two equal). -#}
    {%- set model_version = var('model_version') -%}
    {%- if model_version is not string or (model_version != '' and not modules.re.match('^[0-9a-f]{12}$', model_version)) -%}
        {{ exceptions.raise_compiler_error("invalid --vars: model_version must be empty (train) or a version of 12 hex digits as `loan-recovery models list` prints it, got " ~ model_version ~ "; `loan-recovery build --model approved` scores with the approved one") }}
    {%- endif -%}

    {%- for prefix in ['', 'challenger_'] -%}
        {%- set legal = var(prefix ~ 'legal_threshold') -%}
        {%- set settlement = var(prefix ~ 'settlement_threshold') -%}
        {%- for name, value in [(prefix ~ 'legal_threshold', legal), (prefix ~ 'settlement_threshold', settlement)] -%}
            {%- if value is not number or value is boolean or value < 0 or value > 1 -%}
                {{ exceptions.raise_compiler_error("invalid --vars: " ~ name ~ " must be a number between 0 and 1, got " ~ value ~ "; pass it as --vars '{" ~ name ~ ": 0.6}'") }}
            {%- endif -%}
        {%- endfor -%}
        {%- if settlement > legal -%}
            {{ exceptions.raise_compiler_error("invalid --vars: " ~ prefix ~ "settlement_threshold (" ~ settlement ~ ") must not be above " ~ prefix ~ "legal_threshold (" ~ legal ~ ")") }}
        {%- endif -%}
    {%- endfor -%}

    {%- set shares = [] -%}
    {%- for name in ['challenger_share', 'explore_share'] -%}
        {%- set value = var(name) -%}
        {%- if value is not number or value is boolean or value < 0 or value > 1 -%}
            {{ exceptions.raise_compiler_error("invalid --vars: " ~ name ~ " must be a share between 0 and 1, got " ~ value) }}
        {%- endif -%}
        {%- do shares.append(value) -%}
    {%- endfor -%}
    {%- if shares | sum > 1 -%}
        {{ exceptions.raise_compiler_error("invalid --vars: challenger_share and explore_share add up to " ~ (shares | sum) ~ ", more than the whole book (1)") }}
    {%- endif -%}

    {%- set days = var('legal_min_days_past_due') -%}
    {%- if days is not number or days is boolean or days != days | int or days < 0 or days > 3650 -%}
        {{ exceptions.raise_compiler_error("invalid --vars: legal_min_days_past_due must be a whole number of days from 0 to 3650, got " ~ days) }}
    {%- endif -%}

    {%- set strategies = ['reminders', 'settlement', 'legal'] -%}
    {%- set costs = var('action_costs') -%}
    {%- if costs is not mapping or (costs.keys() | list | sort) != (strategies | sort) -%}
        {{ exceptions.raise_compiler_error("invalid --vars: action_costs must give a cost for each of reminders, settlement and legal, got " ~ costs) }}
    {%- endif -%}
    {%- for name, value in costs.items() -%}
        {%- if value is not number or value is boolean or value < 0 or value > 1000000000 -%}
            {{ exceptions.raise_compiler_error("invalid --vars: action_costs." ~ name ~ " must be a cost of at least 0, got " ~ value) }}
        {%- endif -%}
    {%- endfor -%}
    {%- for name in ['settlement_haircut', 'partial_recovery_share'] -%}
        {%- set value = var(name) -%}
        {%- if value is not number or value is boolean or value < 0 or value > 1 -%}
            {{ exceptions.raise_compiler_error("invalid --vars: " ~ name ~ " must be a share between 0 and 1, got " ~ value) }}
        {%- endif -%}
    {%- endfor -%}
    {%- for name in ['decision_policy', 'challenger_policy'] -%}
        {%- if var(name) not in ['thresholds', 'expected_value'] -%}
            {{ exceptions.raise_compiler_error("invalid --vars: " ~ name ~ " must be thresholds or expected_value, got " ~ var(name)) }}
        {%- endif -%}
    {%- endfor -%}
    {%- set minimum = var('min_randomised_outcomes') -%}
    {%- if minimum is not number or minimum is boolean or minimum != minimum | int or minimum < 2 or minimum > 10000000 -%}
        {{ exceptions.raise_compiler_error("invalid --vars: min_randomised_outcomes must be a whole number from 2 to 10000000, got " ~ minimum) }}
    {%- endif -%}
    {%- set priors = var('prior_action_effects') -%}
    {%- if priors is not mapping or (priors.keys() | list | sort) != ['legal', 'settlement'] -%}
        {{ exceptions.raise_compiler_error("invalid --vars: prior_action_effects must give settlement and legal, got " ~ priors) }}
    {%- endif -%}
    {%- for name, value in priors.items() -%}
        {%- if value is not number or value is boolean or value < -1 or value > 1 -%}
            {{ exceptions.raise_compiler_error("invalid --vars: prior_action_effects." ~ name ~ " must be a change in probability between -1 and 1, got " ~ value) }}
        {%- endif -%}
    {%- endfor -%}

    {%- set experiment = var('experiment_id') -%}
    {%- if experiment is not string or not modules.re.match('^[A-Za-z0-9._-]{1,64}$', experiment) -%}
        {{ exceptions.raise_compiler_error("invalid --vars: experiment_id must be 1 to 64 letters, digits or ._-, got " ~ experiment) }}
    {%- endif -%}

    {%- set as_of = var('as_of_date') -%}
    {%- if as_of is not string or (as_of != '' and not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', as_of)) -%}
        {{ exceptions.raise_compiler_error("invalid --vars: as_of_date must be empty (today) or a date YYYY-MM-DD, got " ~ as_of) }}
    {%- endif -%}
    {%- if as_of != '' and not (1 <= as_of[5:7] | int <= 12 and 1 <= as_of[8:10] | int <= 31) -%}
        {{ exceptions.raise_compiler_error("invalid --vars: as_of_date " ~ as_of ~ " is not a calendar date (YYYY-MM-DD)") }}
    {%- endif -%}

    {%- if var('loans_path') is not string -%}
        {{ exceptions.raise_compiler_error("invalid --vars: loans_path must be a file path (text), got " ~ var('loans_path')) }}
    {%- endif -%}
    select 1
{% endmacro %}
