"""What each collection action does to a loan's chance of full recovery, learned honestly.

The outcome model says how likely an open loan is to recover fully; it
learned that from history, whose loans were collected under the lender's
old, rule-based policy (almost all with reminders). It cannot say what
*another* action would do: in that history the action followed the loan's
risk, so a loan that got legal action differs from one that did not in ways
that also drive its outcome. An effect fitted on it would be confounded.

Only the explore cell's decisions are randomised: each explored loan's
action was drawn at random among its eligible ones, whatever its risk. So
this module learns from the explore cell's resolved decisions only, and the
data guards it: every training row must say ``cell = 'explore'`` or nothing
is fitted.

The model, per action (a "T-learner"): a regularised logistic regression of
full recovery on the outcome model's own inputs (the features, the ratios,
the category levels) plus the logit of the loan's baseline probability at
decision time, fitted on the explored loans that got that action. A loan's
effect of action ``a`` is the difference between the ``a`` and the
reminders regressions at its features; its probability under ``a`` is the
outcome model's probability (the baseline, read as reminders: the history
was almost all reminders) plus that effect, kept within (0, 1). The model
sees what the outcome model sees, not a functional form chosen to match a
simulator; a second truth in the tests checks it.

Which actions are learned is decided in SQL (``int_action_effect_sources``:
enough randomised outcomes of the action and of reminders, var
``min_randomised_outcomes``); an action not yet learned takes its prior,
var ``prior_action_effects``, a documented assumption.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from loan_recovery.modelling.loan_source import LoanSource, numbers, stream
from loan_recovery.modelling.model_input import KEY, check_features, flags, read_loan_columns

__all__ = ["BASELINE", "LEARNED", "PRIOR", "estimate_action_probabilities"]

BASELINE = "baseline"
"""The source of the least intensive strategy (rank 1): the outcome model's probability."""
LEARNED = "learned"
PRIOR = "prior"
RANDOMISED_CELL = "explore"
"""The only cell whose actions were drawn at random."""

BASELINE_PROBABILITY = "loss_probability"
"""The outcome model's probability of not recovering fully: 1 minus the baseline."""
ACTION = "assigned_strategy_code"
FULL = "is_fully_recovered"
CELL = "cell"
DECIDED_ON = "as_of_date"
REGULARISATION = 0.3
"""Inverse L2 strength of each regression: a few hundred outcomes per action fit 20-odd weights."""
EDGE = 1e-3
"""Probabilities are kept within [EDGE, 1 - EDGE]: no action makes an outcome certain."""


def output_schema(strategies: Sequence[str]) -> pa.Schema:
    """loan_id and ``p_full_<strategy>`` per strategy (loan_id takes the input's type)."""
    return pa.schema(
        [(KEY, pa.string())] + [(f"p_full_{code}", pa.float64()) for code in strategies]
    )


def _logit(probability: NDArray[np.float64]) -> NDArray[np.float64]:
    clipped = np.clip(probability, EDGE, 1 - EDGE)
    return np.asarray(np.log(clipped / (1 - clipped)), dtype=np.float64)


def _design(
    table: pa.Table,
    features: Sequence[str],
    categories: Mapping[str, Sequence[str]],
    post_outcome_columns: Sequence[str],
    action: str,
) -> NDArray[np.float64]:
    """The regressions' inputs: the outcome model's features and the baseline's logit."""
    block = read_loan_columns(
        table,
        features,
        post_outcome_columns=post_outcome_columns,
        action=action,
        extra_columns=(BASELINE_PROBABILITY,),
        categories=categories,
    )
    values = block.block(0, block.n_rows, np.float64)
    baseline = 1 - table.column(BASELINE_PROBABILITY).to_numpy(zero_copy_only=False)
    return np.column_stack([values, _logit(np.asarray(baseline, dtype=np.float64))])


def _check_randomised(training: pa.Table) -> None:
    """Refuse to learn from any decision that was not randomised (the data guard)."""
    cells = set(training.column(CELL).to_pylist())
    if cells - {RANDOMISED_CELL}:
        others = ", ".join(sorted(str(cell) for cell in cells - {RANDOMISED_CELL}))
        raise ValueError(
            f"action effects are learned from the {RANDOMISED_CELL} cell's randomised "
            f"decisions only; the training rows include {others}: their actions followed "
            "the score, so their outcomes are confounded"
        )


def _fit(
    training: pa.Table,
    baseline: str,
    learned: Sequence[str],
    features: Sequence[str],
    categories: Mapping[str, Sequence[str]],
    post_outcome_columns: Sequence[str],
) -> tuple[NDArray[np.float64], NDArray[np.float64], dict[str, LogisticRegression]]:
    """Standardisation and one regression per learned action and reminders."""
    design = _design(training, features, categories, post_outcome_columns, "learn from")
    centre = design.mean(axis=0)
    spread = design.std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    standard = (design - centre) / spread
    actions = np.asarray(training.column(ACTION).to_pylist(), dtype=object)
    recovered = flags(training, FULL)
    models = {}
    for action in (baseline, *learned):
        rows = actions == action
        if len(set(recovered[rows].tolist())) < 2:
            raise ValueError(
                f"the randomised outcomes of {action} hold one outcome only; "
                "its effect cannot be learned yet"
            )
        model = LogisticRegression(C=REGULARISATION, max_iter=2000)
        model.fit(standard[rows], recovered[rows])
        models[action] = model
    return centre, spread, models


@dataclass(frozen=True)
class EffectSources:
    """Per strategy, in rank order (the baseline first): where its effect comes from."""

    strategies: tuple[str, ...]
    sources: dict[str, str]
    priors: dict[str, float]

    @property
    def baseline(self) -> str:
        return self.strategies[0]

    @property
    def learned(self) -> list[str]:
        return [code for code in self.strategies[1:] if self.sources[code] == LEARNED]


def effect_sources(
    table: pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation,
    session: duckdb.DuckDBPyConnection | None = None,
) -> EffectSources:
    """int_action_effect_sources read: the strategies by rank, each one's source and prior.

    The strategies' codes come from the catalog through that table, so none
    is written here.
    """
    source = LoanSource.of(table, session)
    source.require(["strategy_code", "strategy_rank", "source", "prior_effect"])
    rows = source.connection.sql(
        f"select strategy_code, source, prior_effect from ({source.query}) as sources "
        "order by strategy_rank"
    ).fetchall()
    found = {str(code): str(kind) for code, kind, _ in rows}
    if not rows or found[str(rows[0][0])] != BASELINE:
        raise ValueError("int_action_effect_sources must give the baseline strategy first")
    wrong = {code: kind for code, kind in list(found.items())[1:] if kind not in (LEARNED, PRIOR)}
    if wrong:
        raise ValueError(f"each action's effect is learned or prior, got {wrong}")
    return EffectSources(
        tuple(str(code) for code, _, _ in rows),
        found,
        {str(code): float(prior or 0.0) for code, _, prior in rows},
    )


def estimate_action_probabilities(
    loans: pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation,
    randomised: pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation,
    effect_source_table: pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation,
    features: Sequence[str],
    *,
    categories: Mapping[str, Sequence[str]],
    post_outcome_columns: Sequence[str],
    protected_attributes: Sequence[str],
    session: duckdb.DuckDBPyConnection | None = None,
) -> pa.RecordBatchReader:
    """Each loan's probability of full recovery under each action (see the module docstring).

    ``loans``: loan_id, ``features``, the ``categories`` and the outcome
    model's loss_probability (null when it fell back: then every
    probability is null and the policies fall back to the thresholds).
    ``randomised``: the explore cell's resolved decisions with the same
    columns (loss_probability as at decision time), ``cell``, the
    ``assigned_strategy_code`` and ``is_fully_recovered``.
    ``effect_source_table`` (int_action_effect_sources) says for settlement
    and legal whether the effect is ``learned`` or its ``prior_effect``.
    """
    found = effect_sources(effect_source_table, session)
    learned = found.learned
    check_features(
        [*features, *categories],
        post_outcome_columns,
        forbidden=(ACTION, FULL, CELL),
        protected_attributes=list(protected_attributes),
    )
    inputs = [KEY, *features, *categories, BASELINE_PROBABILITY]
    centre = spread = None
    models: dict[str, LogisticRegression] = {}
    if learned:
        source = LoanSource.of(randomised, session)
        source.require([*inputs, CELL, ACTION, FULL, DECIDED_ON])
        training = source.connection.sql(
            f"select * from ({source.query}) as randomised order by {DECIDED_ON}, {KEY}"
        ).to_arrow_table()
        _check_randomised(training)
        centre, spread, models = _fit(
            training, found.baseline, learned, features, categories, post_outcome_columns
        )
    to_score = LoanSource.of(loans, session)
    to_score.require(inputs)
    schema = to_score.keyed(output_schema(found.strategies))

    def batches() -> Iterator[pa.Table]:
        for batch in to_score.batches(inputs):
            baseline = 1 - np.asarray(
                batch.column(BASELINE_PROBABILITY).to_numpy(zero_copy_only=False),
                dtype=np.float64,
            )
            known = np.isfinite(baseline)
            probabilities = {found.baseline: baseline}
            scored = bool(models) and bool(known.any())
            if scored and centre is not None and spread is not None:
                design = _design(
                    batch.filter(pa.array(known)),
                    features,
                    categories,
                    post_outcome_columns,
                    "score",
                )
                standard = (design - centre) / spread
                fitted_baseline = models[found.baseline].predict_proba(standard)[:, 1]
            for action in found.strategies[1:]:
                effect = np.full(batch.num_rows, found.priors[action])
                if scored and action in models:
                    effect[known] = models[action].predict_proba(standard)[:, 1] - fitted_baseline
                probabilities[action] = np.where(
                    known, np.clip(baseline + effect, EDGE, 1 - EDGE), np.nan
                )
            columns = [numbers(probabilities[action]) for action in found.strategies]
            yield pa.table([batch.column(KEY), *columns], schema=schema)

    return stream(schema, batches())
