"""The simulated lender: what each collection action truly does, and what collecting records.

Rules 10, 11, 13, 14 and 15 of :mod:`loan_recovery.generate.rules` live here
(the rules module lists them all). A loan's pre-collection facts (rules 1-9)
give an ordinal latent; the collection action shifts it; one per-loan normal
draw, the same under every action, decides the outcome. So every loan has a
true probability of full recovery under each action, and the outcome a book
shows follows the action actually taken: a test, or a later month's book,
can check that, and the expected-value policy of issue 28 can be graded
against the truth rather than against what the old policy happened to do.

The action effects are a pluggable :class:`ActionEffects`: the lender uses
:data:`DEFAULT_EFFECTS` (:class:`StretchAndSecurityEffects`);
:data:`ALTERNATIVE_EFFECTS` (:class:`SegmentStepEffects`) is a second truth,
built differently on other columns, for tests that must not pass only because
an estimator happens to share the generator's functional form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import ndtr, ndtri

from loan_recovery.generate.rules import Columns, _by_code, code_of

ACTIONS = ("reminders", "settlement", "legal")
"""The three collection actions, as the strategy codes of ``recovery_strategy_catalog``.

The order is the codes' order (0 reminders, 1 settlement, 2 legal); reminders
is the baseline every effect is measured against.
"""
REMINDERS, SETTLEMENT, LEGAL = range(len(ACTIONS))

# --- rule 10: the recovery latent from pre-collection facts ---
# Coefficients of the ordinal latent; higher means worse recovery. The noise sets how
# predictable recovery is (a RandomForest on the ten pre-collection features of the
# resolved loans reaches an out-of-bag ROC AUC near 0.78-0.80); the thresholds were
# calibrated once, on a 300,000-loan book collected under the old policy (rule 14), to
# give about 59 / 31 / 10 % Fully / Partially Recovered / Written Off.
OUTCOME_MISSED = 0.35
OUTCOME_DPD = 0.01  # per day past due
OUTCOME_BURDEN = 3.0
OUTCOME_COVER = 1.0  # per unit of collateral / outstanding (capped at MAX_COVER)
MAX_COVER = 2.0
OUTCOME_NOISE = 1.5
OUTCOME_THRESHOLDS = (0.51, 2.72)  # Fully | Partially | Written Off


def payment_burden(facts: Columns) -> np.ndarray:
    """EMI / monthly income: how stretched the borrower is."""
    return np.asarray(facts["monthly_emi"] / facts["monthly_income"], dtype=np.float64)


def collateral_cover(facts: Columns) -> np.ndarray:
    """Collateral / outstanding balance, capped at :data:`MAX_COVER` (enforceable security)."""
    cover = facts["collateral_value"] / facts["outstanding_loan_amount"]
    return np.asarray(np.minimum(cover, MAX_COVER), dtype=np.float64)


def latent_mean(facts: Columns) -> np.ndarray:
    """The recovery latent before any action and noise (rule 10).

    Computed from the columns exactly as a book holds them (rounded amounts),
    so that a later month recomputes the same value from the written file.
    """
    return (
        OUTCOME_MISSED * facts["num_missed_payments"]
        + OUTCOME_DPD * facts["days_past_due"]
        + OUTCOME_BURDEN * payment_burden(facts)
        - OUTCOME_COVER * collateral_cover(facts)
    )


# --- rule 13: what each action does ---


class ActionEffects(Protocol):
    """A truth about collection actions: per loan, how much each action moves the latent.

    ``latent_shifts`` returns, for every action of :data:`ACTIONS`, an array
    of per-loan shifts added to the recovery latent (negative helps: the
    latent must fall below the first threshold for full recovery). Reminders
    is the baseline and should shift nothing.
    """

    def latent_shifts(self, facts: Columns) -> dict[str, np.ndarray]: ...


def _ramp(values: np.ndarray, start: float, full: float) -> np.ndarray:
    """0 below ``start``, 1 from ``full`` on, linear between: a smooth 'how much' of a condition."""
    return np.asarray(np.clip((values - start) / (full - start), 0.0, 1.0), dtype=np.float64)


@dataclass(frozen=True)
class StretchAndSecurityEffects:
    """The generator's truth: settlement helps the stretched, legal action needs security.

    * Settlement shifts the latent by ``-settlement_effect x stretch``, where
      stretch ramps from 0 at an EMI / income burden of ``stretch_start`` to 1
      at ``stretch_full``. A borrower who cannot carry the instalment settles
      for a reduced amount he can pay; one who can pay gains nothing from an
      offer (and the lender gives up the haircut).
    * Legal action shifts it by ``legal_damage - legal_effect x security x
      arrears``: security ramps with collateral cover (collateral /
      outstanding) from ``security_start`` to ``security_full`` (the balance is
      enforceable), arrears ramps with days past due up to
      ``arrears_full_days``. Without security, or on a barely delinquent loan,
      what is left is ``legal_damage``: the relationship and costs suffer and
      recovery gets worse.
    """

    settlement_effect: float = 4.8
    stretch_start: float = 0.15
    stretch_full: float = 0.45
    legal_effect: float = 5.0
    legal_damage: float = 0.4
    security_start: float = 0.4
    security_full: float = 1.0
    arrears_full_days: float = 90.0

    def latent_shifts(self, facts: Columns) -> dict[str, np.ndarray]:
        stretch = _ramp(payment_burden(facts), self.stretch_start, self.stretch_full)
        security = _ramp(collateral_cover(facts), self.security_start, self.security_full)
        arrears = _ramp(facts["days_past_due"].astype(np.float64), 0.0, self.arrears_full_days)
        return {
            "reminders": np.zeros(len(stretch)),
            "settlement": -self.settlement_effect * stretch,
            "legal": self.legal_damage - self.legal_effect * security * arrears,
        }


@dataclass(frozen=True)
class SegmentStepEffects:
    """An alternative truth for tests: steps on other columns, not ramps on burden and cover.

    Issue 28 must show that its learned effects are right on a book whose
    truth differs from the generator's. Here:

    * Settlement helps the self-employed and business owners (lumpy income:
      a lump-sum deal fits them) by ``settlement_step`` once they have missed
      at least ``settlement_min_missed`` payments, and slightly harms salaried
      borrowers (``salaried_settlement``: an offer invites a strategic
      default from someone with a steady wage).
    * Legal action works by what can be enforced: a per-loan-type step
      (``legal_by_loan_type``: a mortgage forecloses, a car is repossessed,
      an unsecured personal loan only gets a court judgement), applied in
      full from ``legal_min_missed`` missed payments; below that only the
      damage ``legal_early_damage`` remains.
    """

    settlement_step: float = 4.5
    settlement_min_missed: int = 1
    salaried_settlement: float = 0.3
    legal_home: float = -5.0
    legal_auto: float = -3.5
    legal_business: float = -1.5
    legal_personal: float = 0.8
    legal_min_missed: int = 3
    legal_early_damage: float = 0.6

    def latent_shifts(self, facts: Columns) -> dict[str, np.ndarray]:
        missed = facts["num_missed_payments"]
        salaried = facts["employment_type"] == code_of("employment_type", "Salaried")
        settlement = np.where(
            salaried,
            self.salaried_settlement,
            np.where(missed >= self.settlement_min_missed, -self.settlement_step, 0.0),
        )
        by_type = _by_code(
            "loan_type",
            {
                "Home": self.legal_home,
                "Auto": self.legal_auto,
                "Business": self.legal_business,
                "Personal": self.legal_personal,
            },
        )[facts["loan_type"]]
        legal = np.where(missed >= self.legal_min_missed, by_type, self.legal_early_damage)
        return {
            "reminders": np.zeros(len(missed)),
            "settlement": settlement.astype(np.float64),
            "legal": legal.astype(np.float64),
        }


DEFAULT_EFFECTS: ActionEffects = StretchAndSecurityEffects()
ALTERNATIVE_EFFECTS: ActionEffects = SegmentStepEffects()


def _shift_matrix(facts: Columns, effects: ActionEffects) -> np.ndarray:
    """The effects' shifts as an (n, 3) array in :data:`ACTIONS` order, checked for shape."""
    shifts = effects.latent_shifts(facts)
    if set(shifts) != set(ACTIONS):
        raise ValueError(f"action effects must give {ACTIONS}, got {sorted(shifts)}")
    n = len(facts["days_past_due"])
    matrix = np.column_stack([np.broadcast_to(shifts[a], (n,)) for a in ACTIONS])
    return matrix.astype(np.float64)


def full_recovery_probabilities(facts: Columns, effects: ActionEffects) -> np.ndarray:
    """P(Fully Recovered | action) per loan, an (n, 3) array in :data:`ACTIONS` order.

    The exact probability of the draw in :func:`recovery_outcome`: the latent
    is normal with mean ``latent_mean + shift`` and sd :data:`OUTCOME_NOISE`,
    and full recovery is the latent below the first threshold.
    """
    mean = latent_mean(facts)[:, None] + _shift_matrix(facts, effects)
    return np.asarray(ndtr((OUTCOME_THRESHOLDS[0] - mean) / OUTCOME_NOISE), dtype=np.float64)


# --- rule 14: the old policy that collected the resolved loans ---
LEGACY_LEGAL_DAYS = 150
"""The old policy sent loans this far past due (five instalments and more) to legal action."""
LEGACY_SETTLEMENT_BURDEN = 0.6
LEGACY_SETTLEMENT_MISSED = 3
"""... and offered settlement to borrowers this stretched who had missed this many payments."""


def historical_actions(facts: Columns) -> np.ndarray:
    """The action the lender's old, rule-based policy took on a loan (rule 14).

    Deterministic in the pre-collection facts, never random: every loan alike
    got the same action, so the resolved loans' outcomes confound the action
    with the kind of loan and cannot teach what an action does (issue 28
    must learn effects from randomised decisions only).
    """
    legal = facts["days_past_due"] >= LEGACY_LEGAL_DAYS
    settlement = (payment_burden(facts) >= LEGACY_SETTLEMENT_BURDEN) & (
        facts["num_missed_payments"] >= LEGACY_SETTLEMENT_MISSED
    )
    return np.where(legal, LEGAL, np.where(settlement, SETTLEMENT, REMINDERS)).astype(np.int8)


# --- rule 15: per-loan random numbers (common random numbers across actions) ---
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_MASK = (1 << 64) - 1
NOISE_STREAM = 1
ATTEMPTS_STREAM = 2


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: spreads every input bit over the 64-bit output."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _id_hashes(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """FNV-1a over each id's UTF-8 bytes, vectorised over loans (ids must be non-null).

    Our own definition, so a loan's number is the same on every machine and
    every version of NumPy, Arrow or DuckDB, whatever book it sits in.
    """
    binary = pc.cast(ids, pa.large_binary())
    if isinstance(binary, pa.ChunkedArray):
        binary = binary.combine_chunks()
    _, offsets_buffer, data_buffer = binary.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[
        binary.offset : binary.offset + len(binary) + 1
    ]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.zeros(0, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    hashes = np.full(len(binary), _FNV_OFFSET, dtype=np.uint64)
    for position in range(int(lengths.max(initial=0))):
        longer = lengths > position
        byte = data[starts[longer] + position].astype(np.uint64)
        hashes[longer] = (hashes[longer] ^ byte) * _FNV_PRIME
    return hashes


def loan_uniforms(ids: pa.Array | pa.ChunkedArray, seed: int, stream: int) -> np.ndarray:
    """One uniform in (0, 1) per loan, keyed by its id, the seed and a stream number.

    A loan draws the same number in any book, chunk or row order, and under
    any action: that is what makes its outcomes under the three actions
    common random numbers, and next month's outcome reproducible.
    """
    key = (seed * 0x9E3779B97F4A7C15 + stream * 0xD1B54A32D192ED03) & _MASK
    salt = _mix(np.array([key], dtype=np.uint64))[0]
    bits = _mix(_id_hashes(ids) ^ salt)
    return np.asarray(((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53)


# --- rules 10 and 11: the outcome and what collecting recorded ---
ATTEMPTS_RANGE = {"reminders": (0, 5), "settlement": (1, 6), "legal": (3, 10)}
"""Contact attempts per action (inclusive): more effort as the action escalates."""
AGENCY_MISSED = 2
"""Reminders on a loan this many payments behind are worked by debt collectors, not calls."""


def recovery_outcome(
    facts: Columns, actions: np.ndarray, noise: np.ndarray, effects: ActionEffects
) -> np.ndarray:
    """Recovery_Status codes under the given actions, from standard-normal noise (rule 10)."""
    shift = _shift_matrix(facts, effects)[np.arange(len(actions)), actions]
    latent = latent_mean(facts) + shift + OUTCOME_NOISE * noise
    partial, written_off = OUTCOME_THRESHOLDS
    codes = np.where(
        latent < partial,
        code_of("recovery_status", "Fully Recovered"),
        np.where(
            latent < written_off,
            code_of("recovery_status", "Partially Recovered"),
            code_of("recovery_status", "Written Off"),
        ),
    )
    return codes.astype(np.int8)


def collection_record(facts: Columns, actions: np.ndarray, attempts_uniform: np.ndarray) -> Columns:
    """Collection_Method, Legal_Action_Taken and Collection_Attempts from the action (rule 11).

    Never from the outcome: a book whose collection columns follow the
    outcome teaches reverse causality ("legal action loses money").
    """
    method = np.select(
        [actions == LEGAL, actions == SETTLEMENT, facts["num_missed_payments"] >= AGENCY_MISSED],
        [
            code_of("collection_method", "Legal Notice"),
            code_of("collection_method", "Settlement Offer"),
            code_of("collection_method", "Debt Collectors"),
        ],
        default=code_of("collection_method", "Calls"),
    )
    legal = np.where(
        actions == LEGAL, code_of("legal_action_taken", "Yes"), code_of("legal_action_taken", "No")
    )
    low = np.array([ATTEMPTS_RANGE[a][0] for a in ACTIONS])[actions]
    high = np.array([ATTEMPTS_RANGE[a][1] for a in ACTIONS])[actions]
    attempts = low + np.floor(attempts_uniform * (high - low + 1)).astype(np.int64)
    return {
        "collection_attempts": np.minimum(attempts, high),
        "collection_method": method.astype(np.int8),
        "legal_action_taken": legal.astype(np.int8),
    }


def collect(
    facts: Columns,
    ids: pa.Array | pa.ChunkedArray,
    actions: np.ndarray,
    seed: int,
    effects: ActionEffects,
) -> Columns:
    """The post-collection columns of loans collected under ``actions`` (rules 10, 11, 15).

    Every draw is keyed by loan id and seed, so the same loan gets the same
    outcome under the same action in a fresh book and in next month's book.
    """
    noise = ndtri(loan_uniforms(ids, seed, NOISE_STREAM))
    return {
        "recovery_status": recovery_outcome(facts, actions, noise, effects),
        **collection_record(facts, actions, loan_uniforms(ids, seed, ATTEMPTS_STREAM)),
    }


def action_of_method(method_codes: np.ndarray) -> np.ndarray:
    """The action a Collection_Method records (the inverse of rule 11): -1 where unknown."""
    by_method = {
        "Calls": REMINDERS,
        "Debt Collectors": REMINDERS,
        "Settlement Offer": SETTLEMENT,
        "Legal Notice": LEGAL,
    }
    table = _by_code("collection_method", by_method).astype(np.int8)
    return np.where(method_codes >= 0, table[np.maximum(method_codes, 0)], -1).astype(np.int8)
