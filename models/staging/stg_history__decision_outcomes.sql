-- The served file's decision_outcomes as this build found it, without this cycle or
-- later (docs block decision_log): the history the decision_outcomes mart extends. Typed
-- by that mart's contract; empty on a first build.
with

final as (

    {{ carried_history('decision_outcomes', 'resolved_as_of_date') }}

)

select * from final
