"""The header's build facts: what was built, when, from what, with which thresholds.

Each fact carries its source (:class:`Sourced`) so the reader can judge it.

``build_info`` (written by ``loan-recovery build``, read through
:func:`loan_recovery.build_info.read`) is the only record of the build id and
input file, but it is optional and can be stale: a plain ``dbt build`` writes
none, and one into a file that once had ``loan-recovery build`` leaves the old
row behind. So it is trusted only when it describes the marts' build (same
model version, same clean and quarantined row counts); otherwise the header
falls back to the marts and a warning says why.

The model version is the registry id (``run_settings.model_version``, the
same in every mart and in ``build_info``): the one ``loan-recovery models
approve`` takes. None when the outcome model fell back and nothing was
registered.

The thresholds have one source whatever happened: ``main.run_settings``, the
row the strategy CASE applied. No fallback, so nothing to warn about.

Which score drove the strategy has two records that must agree:
``risk_model_metrics.is_score_in_use`` and ``recovery_strategies.score_source``.
The header names the score and, when the outcome model fell back, says so with
``model_status``'s reason (also as a warning: the strategy did not use the
model it was asked for).

Pure: everything comes from :class:`ReportData`; no database here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from loan_recovery.build_info import BuildInfo
from loan_recovery.modelling.status import FROZEN
from loan_recovery.report.queries import ReportData

T = TypeVar("T")

NO_BUILD_INFO = "no build_info"
THRESHOLDS_SOURCE = "main.run_settings (what recovery_strategies applied)"
SCORE_SOURCE = "risk_model_metrics.is_score_in_use = recovery_strategies.score_source"
OUTCOME_STATUS_SOURCE = "risk_model_metrics.model_status (score_name outcome)"
SCORE_WORDS = {
    "outcome": "the outcome model's loss_probability",
    "segment": "the write-up's segment_risk_score",
}


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A fact and where it came from, so the reader can judge it."""

    value: T
    source: str


@dataclass(frozen=True)
class BuildFacts:
    """What the header says about the build the report shows."""

    database: str
    build_id: Sourced[str]
    built_at: Sourced[datetime | None]
    input_file: Sourced[str]
    loans: Sourced[int]
    quarantined: Sourced[int]
    legal_threshold: Sourced[float]
    settlement_threshold: Sourced[float]
    model_version: Sourced[str]
    """The registry id (``models approve`` takes it), or :data:`NO_MODEL_VERSION`."""
    score_in_use: Sourced[str]
    outcome_model: Sourced[str]
    warnings: tuple[str, ...] = ()


NO_MODEL_VERSION = "none: the outcome model fell back, so nothing was registered"
MARTS_VERSION_SOURCE = "run_settings.model_version (the registry id every mart carries)"


def marts_model_version(data: ReportData) -> str | None:
    """The build's model_version as the marts carry it: the registry id, or None."""
    return data.model_version


def score_facts(data: ReportData) -> tuple[Sourced[str], Sourced[str], list[str]]:
    """Which score drove the strategy, the outcome model's status, and warnings about them."""
    warnings: list[str] = []
    in_use = str(data.score_in_use.get("score_name", "none"))
    sources = sorted(str(s) for s in data.score_sources["score_source"])
    if sources != [in_use]:
        warnings.append(
            f"risk_model_metrics says {in_use} drove the strategy, recovery_strategies."
            f"score_source says {', '.join(sources) or 'nothing'}: rerun `dbt build`"
        )
    asked = str(data.settings.get("strategy_score", in_use))
    used = f"{in_use}: {SCORE_WORDS.get(in_use, in_use)}"
    if asked != in_use:
        used += f" (run_settings.strategy_score asked for {asked})"
    outcome = data.score("outcome")
    fallback = data.outcome_fallback
    if fallback is not None:
        outcome_text = f"fell back: {fallback}"
        warnings.append(
            f"The outcome model fell back ({fallback}): "
            f"the strategy used {SCORE_WORDS.get(in_use, in_use)}"
        )
    elif outcome.get("model_status") == FROZEN:
        outcome_text = (
            f"frozen: scored with model {data.model_version}; nothing trained on this book"
        )
    else:
        outcome_text = (
            f"trained on {int(outcome['training_rows']):,} resolved loans, "
            f"version {data.model_version}"
        )
    return (
        Sourced(used, SCORE_SOURCE),
        Sourced(outcome_text, OUTCOME_STATUS_SOURCE),
        warnings,
    )


def stale_reason(info: BuildInfo, data: ReportData) -> str | None:
    """Why a build_info row describes another build than the marts (None if it matches)."""
    marts_version = marts_model_version(data)
    if info.model_version != marts_version:
        return f"its model_version {info.model_version} is not the marts' {marts_version}"
    if info.rows_clean != data.loan_count:
        return f"its rows_clean {info.rows_clean:,} is not stg_loans' {data.loan_count:,} loans"
    if info.rows_quarantined != data.quarantined_count:
        return (
            f"its rows_quarantined {info.rows_quarantined:,} is not quarantined_loans' "
            f"{data.quarantined_count:,} rows"
        )
    return None


def build_facts(data: ReportData, database: str = "") -> BuildFacts:
    """The header's facts: build_info when it describes this build, else the marts."""
    info = data.build_info
    warnings: list[str] = []
    if info is None:
        warnings.append(
            "no build_info this version can read (a plain dbt build?): "
            "the build id and input file are not recorded"
        )
    elif reason := stale_reason(info, data):
        warnings.append(f"build_info ignored: {reason} (a later plain dbt build?)")
        info = None

    marts_version = Sourced(marts_model_version(data) or NO_MODEL_VERSION, MARTS_VERSION_SOURCE)
    score_in_use, outcome_model, score_warnings = score_facts(data)
    warnings.extend(score_warnings)
    if info is None:
        build_id = Sourced("none", NO_BUILD_INFO)
        built_at: Sourced[datetime | None] = Sourced(
            data.built_at, "risk_model_metrics.built_at (when the model ran)"
        )
        input_file = Sourced("not recorded", NO_BUILD_INFO)
        loans = Sourced(data.loan_count, "count of staging.stg_loans")
        quarantined = Sourced(data.quarantined_count, "count of main.quarantined_loans")
        model_version = marts_version
    else:
        build_id = Sourced(info.build_id, "build_info.build_id")
        built_at = Sourced(info.finished_at, "build_info.finished_at")
        input_file = Sourced(info.input_file, "build_info.input_file")
        loans = Sourced(info.rows_clean, "build_info.rows_clean")
        quarantined = Sourced(info.rows_quarantined, "build_info.rows_quarantined")
        model_version = (
            Sourced(info.model_version, "build_info.model_version")
            if info.model_version is not None
            else marts_version
        )
    return BuildFacts(
        database=database,
        build_id=build_id,
        built_at=built_at,
        input_file=input_file,
        loans=loans,
        quarantined=quarantined,
        legal_threshold=Sourced(data.legal_threshold, THRESHOLDS_SOURCE),
        settlement_threshold=Sourced(data.settlement_threshold, THRESHOLDS_SOURCE),
        model_version=model_version,
        score_in_use=score_in_use,
        outcome_model=outcome_model,
        warnings=tuple(warnings),
    )


def format_time(value: datetime | None) -> str:
    """To the second, marked UTC: build_info and the metrics query give naive UTC datetimes."""
    if value is None:
        return "not recorded"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


def header_rows(facts: BuildFacts) -> list[tuple[str, str, str]]:
    """(label, value, source) per header line, in display order; the page escapes them."""
    loans, quarantined = int(facts.loans.value), int(facts.quarantined.value)
    legal, settlement = facts.legal_threshold, facts.settlement_threshold
    return [
        ("Built", format_time(facts.built_at.value), facts.built_at.source),
        ("Build id", str(facts.build_id.value), facts.build_id.source),
        ("Input file", str(facts.input_file.value), facts.input_file.source),
        ("Loans reported (clean)", f"{loans:,}", facts.loans.source),
        (
            "Quarantined rows",
            f"{quarantined:,} ({quarantined / max(loans + quarantined, 1):.1%} of rows read)",
            facts.quarantined.source,
        ),
        (
            "Thresholds",
            f"legal above {legal.value:.2f}, settlement from {settlement.value:.2f}",
            legal.source,  # one source for both: the run_settings row
        ),
        ("Score in use", str(facts.score_in_use.value), facts.score_in_use.source),
        ("Outcome model", str(facts.outcome_model.value), facts.outcome_model.source),
        ("Model version", str(facts.model_version.value), facts.model_version.source),
        ("Database", facts.database, "--db"),
    ]
