"""Every DuckDB query the report runs (the read-only connection is in ``database``).

DuckDB does every count, sum, quartile and histogram bin over all loans, so
the numbers are exact on a book of any size, and what comes back
(:class:`ReportData`) is small whatever the size of the book: nothing after
this module touches the database. Only point clouds use a sample, a
deterministic one (lowest salted hash of ``loan_id``), and each chart that
draws one says so.

Every relation is named with its schema (``staging.stg_loans``,
``intermediate.int_loan_features``, ``main.<mart>``), so the report does not
depend on a search path, and :data:`REPORT_RELATIONS` is exactly what the
``loan_recovery_report`` exposure declares (a test builds a file holding only
those and reports on it).

The thresholds are read from ``main.run_settings``, the row the strategy CASE
took them from, so the lines drawn are the ones the build applied. The report
neither re-derives them from the dbt vars nor re-runs the CASE: that rule
lives in ``macros/strategy_rank.sql`` only. The strategies' codes and their
order come from ``main.recovery_strategy_catalog``, the one place they are
written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from loan_recovery import build_info
from loan_recovery.build_info import BuildInfo
from loan_recovery.config import cluster_features
from loan_recovery.modelling.status import FALLBACK
from loan_recovery.report.database import (  # noqa: F401 (re-exported)
    REPORT_RELATIONS,
    ReportError,
    connect,
    missing_relations,
)

SAMPLE_ROWS = 5_000
SAMPLE_SALT = "loan-recovery-report"
RISK_SCORE_BINS = 40
LOAN_AMOUNT_TARGET_BINS = 40
CALIBRATION_BINS = 10
SCORE_ORDER = ("outcome", "segment", "days_past_due", "base_rate")
REASON_SLOTS = 3
QUEUE_TOP_ROWS = 10
"""Rows of each strategy's work queue the page shows; ``loan-recovery export`` writes them all."""


@dataclass(frozen=True)
class ReportData:
    """Everything the header and the charts are drawn from; small whatever the book's size."""

    loan_count: int
    resolved_count: int
    worked_count: int
    quarantined_count: int
    settings: dict[str, Any]
    scores: pd.DataFrame
    score_sources: pd.DataFrame
    build_info: BuildInfo | None
    sample: pd.DataFrame
    loan_amount_bins: pd.DataFrame
    payment_history: pd.DataFrame
    missed_payment_boxes: pd.DataFrame
    segments: pd.DataFrame
    feature_stats: pd.DataFrame
    risk_score_bins: pd.DataFrame
    strategy_segments: pd.DataFrame
    fairness: pd.DataFrame
    gains: pd.DataFrame
    calibration: pd.DataFrame
    policies: pd.DataFrame
    reason_codes: pd.DataFrame
    reason_catalog: pd.DataFrame
    strategy_catalog: pd.DataFrame
    capacity: pd.DataFrame
    monitoring: pd.DataFrame
    queue_summary: pd.DataFrame
    queue_top: pd.DataFrame
    cycle_trend: pd.DataFrame
    challenger_results: pd.DataFrame
    action_effects: pd.DataFrame

    @property
    def worked_description(self) -> str:
        """Which loans a decision chart counts: this cycle's open ones (all when none is open)."""
        if self.worked_count == self.loan_count:
            return f"all {self.worked_count:,} loans (none is open, so every loan is worked)"
        return f"this cycle's {self.worked_count:,} open loans (is_worked)"

    @property
    def as_of_date(self) -> Any:
        """The decision cycle this build decided for (run_settings.as_of_date)."""
        return self.settings.get("as_of_date")

    @property
    def legal_threshold(self) -> float:
        return float(self.settings["legal_threshold"])

    @property
    def settlement_threshold(self) -> float:
        return float(self.settings["settlement_threshold"])

    @property
    def strategy_order(self) -> list[str]:
        """The strategy codes from the least aggressive to the most, as the catalog ranks them.

        recovery_strategy_catalog is the one place the codes are written; the
        charts stack and list the strategies in this order.
        """
        return [str(code) for code in self.strategy_catalog["strategy_code"]]

    @property
    def strategy_ranks(self) -> dict[str, int]:
        """Each strategy code's strategy_rank in the catalog (1 the least aggressive)."""
        return {
            str(row.strategy_code): int(row.strategy_rank)
            for row in self.strategy_catalog.itertuples()
        }

    def score(self, name: str) -> dict[str, Any]:
        """One row of risk_model_metrics by score_name (empty if the build has none)."""
        rows = self.scores[self.scores["score_name"] == name]
        return {} if rows.empty else rows.iloc[0].to_dict()

    @property
    def score_in_use(self) -> dict[str, Any]:
        """The risk_model_metrics row of the score that drove the strategy."""
        rows = self.scores[self.scores["is_score_in_use"].fillna(False).astype(bool)]
        return {} if rows.empty else rows.iloc[0].to_dict()

    @property
    def outcome_fallback(self) -> str | None:
        """Why the outcome model did not score the book (its fallback_reason), or None."""
        outcome = self.score("outcome")
        status = outcome.get("model_status")
        if status is None or pd.isna(status):
            return "no outcome row in risk_model_metrics"
        if status != FALLBACK:
            return None
        reason = outcome.get("fallback_reason")
        return "no reason recorded" if reason is None or pd.isna(reason) else str(reason)

    @property
    def model_version(self) -> str | None:
        """The build's model_version (run_settings): the registry id, None when nothing is."""
        version = self.settings.get("model_version")
        return None if version is None or pd.isna(version) else str(version)

    @property
    def built_at(self) -> Any:
        return None if self.scores.empty else self.scores["built_at"].iloc[0]


def profile_features() -> list[str]:
    """The segment profile columns: every cluster feature and the mart's two ratios."""
    return [*cluster_features(), "emi_to_income_ratio", "outstanding_share_of_loan"]


def nice_bin_width(low: float, high: float, target_bins: int) -> float:
    """A round bin width (1, 2, 2.5 or 5 times a power of ten) giving about target_bins bins.

    Round widths put the bar edges on numbers a reader can name.
    """
    span = high - low
    if span <= 0:
        return 1.0
    raw = span / target_bins
    power = 10 ** math.floor(math.log10(raw))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= raw)


def _scalar(connection: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = connection.execute(sql).fetchone()
    return row[0] if row else None


def _one_row(connection: duckdb.DuckDBPyConnection, sql: str, relation: str) -> dict[str, Any]:
    """The single row of a one-row relation as a dict; any other count is a broken build."""
    cursor = connection.execute(sql)
    rows = cursor.fetchall()
    if len(rows) != 1:
        raise ReportError(f"{relation} holds {len(rows)} rows, expected 1: rerun `dbt build`")
    return dict(zip([column[0] for column in cursor.description], rows[0], strict=True))


def _sample(connection: duckdb.DuckDBPyConnection, rows: int) -> pd.DataFrame:
    """A deterministic sample: the loans with the lowest salted hash of loan_id.

    Independent of thread count and row order, so the same file always gives
    the same points.
    """
    return connection.execute(
        """
        select loan_id, loan_amount, monthly_income, num_missed_payments, recovery_status
        from staging.stg_loans
        order by hash(loan_id || $salt), loan_id
        limit $rows
        """,
        {"salt": SAMPLE_SALT, "rows": rows},
    ).df()


def _loan_amount_bins(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    low, high = connection.execute(
        "select min(loan_amount), max(loan_amount) from staging.stg_loans"
    ).fetchone() or (0, 0)
    width = nice_bin_width(float(low or 0), float(high or 0), LOAN_AMOUNT_TARGET_BINS)
    return connection.execute(
        """
        select floor(loan_amount / $width) * $width as bin_start,
               floor(loan_amount / $width) * $width + $width as bin_end,
               count(*) as loans
        from staging.stg_loans group by all order by bin_start
        """,
        {"width": width},
    ).df()


def _missed_payment_boxes(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Exact box statistics per status (Tukey fences: furthest loans within 1.5 IQR)."""
    return connection.execute(
        """
        with stats as (
            select recovery_status, count(*) as loans, avg(num_missed_payments) as mean,
                   quantile_cont(num_missed_payments, 0.25) as q1,
                   quantile_cont(num_missed_payments, 0.5) as median,
                   quantile_cont(num_missed_payments, 0.75) as q3
            from staging.stg_loans where recovery_status is not null group by recovery_status
        )
        select stats.*,
               min(l.num_missed_payments) filter (
                   where l.num_missed_payments >= q1 - 1.5 * (q3 - q1)) as lower_fence,
               max(l.num_missed_payments) filter (
                   where l.num_missed_payments <= q3 + 1.5 * (q3 - q1)) as upper_fence
        from stats join staging.stg_loans as l using (recovery_status)
        group by all
        """
    ).df()


def _feature_stats(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Mean and population standard deviation of each profile feature over all loans."""
    selects = " union all ".join(
        f'select \'{name}\' as feature, avg("{name}") as mean, stddev_pop("{name}") as std '
        "from intermediate.int_loan_features"
        for name in profile_features()
    )
    return connection.execute(selects).df()


def _scores(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """risk_model_metrics, one row per score, in SCORE_ORDER (unknown names last)."""
    frame = connection.execute("select * from main.risk_model_metrics order by score_name").df()
    order = {name: i for i, name in enumerate(SCORE_ORDER)}
    frame["_order"] = frame["score_name"].map(lambda name: order.get(name, len(order)))
    return frame.sort_values(["_order", "score_name"]).drop(columns="_order").reset_index(drop=True)


def _calibration(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Resolved loans in ten equal-width bins of loss_probability: mean probability, loss rate.

    Empty when the outcome model fell back (loss_probability null).
    """
    return connection.execute(
        """
        select least(floor(loss_probability * $bins), $bins - 1) / $bins as bin_start,
               count(*) as loans,
               count(*) filter (where recovery_status <> 'Fully Recovered') as losses,
               avg(loss_probability) as mean_probability,
               avg((recovery_status <> 'Fully Recovered')::double) as observed_loss_rate
        from main.recovery_strategies
        where is_resolved and loss_probability is not null
        group by all order by bin_start
        """,
        {"bins": CALIBRATION_BINS},
    ).df()


def _reason_codes(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per strategy, how many worked loans carry each reason code among reason_code_1..3.

    Worked loans (is_worked: the open ones, or all when none is open) are the
    ones that get reasons, and the rows of collection_work_queue.
    """
    slots = " union all ".join(
        f"select strategy_code, reason_code_{i} as reason_code "
        "from main.recovery_strategies where is_worked"
        for i in range(1, REASON_SLOTS + 1)
    )
    return connection.execute(
        f"""
        with slots as ({slots}),
        strategy_loans as (
            select strategy_code, count(*) as strategy_loans
            from main.recovery_strategies where is_worked group by all
        )
        select slots.strategy_code, slots.reason_code, count(*) as loans,
               any_value(strategy_loans.strategy_loans) as strategy_loans
        from slots join strategy_loans using (strategy_code)
        where slots.reason_code is not null
        group by all order by slots.strategy_code, loans desc, slots.reason_code
        """
    ).df()


def _capacity(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per strategy, over the worked loans (the ones capacity counts): loans the thresholds
    sent, loans assigned after capacity, and of those sent, how many capacity moved down."""
    return connection.execute(
        """
        with sent as (
            select threshold_strategy_code as strategy_code, count(*) as threshold_loans,
                   count(*) filter (where capacity_limited) as moved_down
            from main.recovery_strategies where is_worked group by all
        ),
        assigned as (
            select strategy_code, count(*) as assigned_loans
            from main.recovery_strategies where is_worked group by all
        )
        select strategy_code, coalesce(threshold_loans, 0) as threshold_loans,
               coalesce(assigned_loans, 0) as assigned_loans, coalesce(moved_down, 0) as moved_down
        from sent full join assigned using (strategy_code)
        order by strategy_code
        """
    ).df()


def _queue_summary(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """This cycle's work queue per strategy, in money: the first screen's table.

    Every catalog strategy has a row (zeros when it got no loan), in catalog
    order from the most aggressive down, as a manager reads a queue.
    """
    return connection.execute(
        """
        with queue as (
            select strategy_code, count(*) as loans,
                   sum(amount_at_risk) as amount_at_risk,
                   sum(outstanding_loan_amount) as outstanding,
                   sum(expected_recovery) as expected_recovery,
                   sum(expected_cost) as expected_cost,
                   sum(expected_net_value) as expected_net_value,
                   count(*) filter (where capacity_limited) as moved_down_loans,
                   sum(amount_at_risk) filter (where capacity_limited) as moved_down_at_risk,
                   sum(value_given_up_to_capacity) as value_given_up
            from main.collection_work_queue group by all
        )
        select catalog.strategy_code, catalog.strategy_rank, catalog.recovery_strategy,
               coalesce(queue.loans, 0) as loans, queue.amount_at_risk, queue.outstanding,
               queue.expected_recovery, queue.expected_cost, queue.expected_net_value,
               coalesce(queue.moved_down_loans, 0) as moved_down_loans,
               queue.moved_down_at_risk, queue.value_given_up
        from main.recovery_strategy_catalog as catalog
        left join queue using (strategy_code)
        order by catalog.strategy_rank desc
        """
    ).df()


def read_report_data(
    connection: duckdb.DuckDBPyConnection, sample_rows: int = SAMPLE_ROWS
) -> ReportData:
    """Run every query the report needs; aggregates are exact, only point clouds are sampled."""
    settings = _one_row(connection, "select * from main.run_settings", "main.run_settings")
    return ReportData(
        loan_count=int(_scalar(connection, "select count(*) from staging.stg_loans")),
        resolved_count=int(
            _scalar(
                connection,
                "select count(*) from staging.stg_loans where recovery_status is not null",
            )
        ),
        worked_count=int(
            _scalar(connection, "select count(*) from main.recovery_strategies where is_worked")
        ),
        quarantined_count=int(_scalar(connection, "select count(*) from main.quarantined_loans")),
        settings=settings,
        scores=_scores(connection),
        score_sources=connection.execute(
            "select score_source, model_version, count(*) as loans "
            "from main.recovery_strategies group by all order by loans desc"
        ).df(),
        build_info=build_info.read(connection),
        sample=_sample(connection, sample_rows),
        loan_amount_bins=_loan_amount_bins(connection),
        payment_history=connection.execute(
            "select payment_history, recovery_status, count(*) as loans "
            "from staging.stg_loans where recovery_status is not null group by all"
        ).df(),
        missed_payment_boxes=_missed_payment_boxes(connection),
        segments=connection.execute(
            "select * from main.borrower_segments order by segment_id"
        ).df(),
        feature_stats=_feature_stats(connection),
        risk_score_bins=connection.execute(
            """
            select least(floor(risk_score * $bins), $bins - 1) / $bins as bin_start,
                   strategy_code, count(*) as loans
            from main.recovery_strategies where is_worked
            group by all order by bin_start, strategy_code
            """,
            {"bins": RISK_SCORE_BINS},
        ).df(),
        strategy_segments=connection.execute(
            """
            select segment_id, segment_name, strategy_code,
                   any_value(recovery_strategy) as recovery_strategy,
                   count(*) as loans, sum(outstanding_loan_amount) as outstanding
            from main.recovery_strategies where is_worked
            group by all order by segment_id, strategy_code
            """
        ).df(),
        fairness=connection.execute(
            "select * from main.model_fairness order by protected_attribute, attribute_value"
        ).df(),
        gains=connection.execute("select * from main.model_gains order by score_name, decile").df(),
        calibration=_calibration(connection),
        policies=connection.execute(
            "select * from main.strategy_policy_comparison order by policy_name, strategy_code"
        ).df(),
        reason_codes=_reason_codes(connection),
        reason_catalog=connection.execute(
            "select reason_code, features, reason from main.reason_code_catalog "
            "order by reason_code"
        ).df(),
        strategy_catalog=connection.execute(
            "select strategy_code, strategy_rank, recovery_strategy "
            "from main.recovery_strategy_catalog order by strategy_rank"
        ).df(),
        capacity=_capacity(connection),
        monitoring=connection.execute("select * from main.model_monitoring order by variable").df(),
        queue_summary=_queue_summary(connection),
        queue_top=connection.execute(
            "select * from main.collection_work_queue where queue_rank <= $rows "
            "order by strategy_rank desc, queue_rank",
            {"rows": QUEUE_TOP_ROWS},
        ).df(),
        cycle_trend=connection.execute("select * from main.cycle_trend order by as_of_date").df(),
        challenger_results=connection.execute(
            "select * from main.challenger_results order by as_of_date, experiment_id, cell"
        ).df(),
        action_effects=connection.execute(
            "select * from main.action_effects order by strategy_rank"
        ).df(),
    )
