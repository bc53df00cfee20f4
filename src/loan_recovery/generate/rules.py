"""The generating rules: how each loan of a synthetic book is drawn, one concern per function.

One row per loan, the 21 columns of ``loan_book_columns`` in ``dbt_project.yml``
(column names, order and category values come from there through
:mod:`loan_recovery.config`; this module only adds the distributions). The
public file's marginal mixes are kept, but unlike it the columns are tied
together, so that segments differ and a risk model has something to find.

Generating rules, applied to every loan (1-9 and 12 are drawn here; 10, 11 and
13-15, what collection does, by the simulated lender in
:mod:`loan_recovery.generate.lender`):

1. Borrower. Age is uniform 21..64. Gender is Male 62 %. Employment is
   Salaried 58 %, Self-Employed 31 %, Business Owner 11 %. Monthly_Income is
   15,000 + 235,000 x Beta, a little higher and wider for Business Owners,
   in whole currency. Num_Dependents is 0..3, rarely 4.
2. Loan terms. Loan_Type is Personal 44 %, Home 29 %, Auto 17 %, Business 10 %.
   Loan_Tenure is 12..72 months in steps of 12, mostly 36..60. Interest_Rate
   (annual %, 2 decimals) is uniform in a band per type (Home cheapest,
   Personal dearest), plus 0.75 points for Self-Employed and 0.5 for
   Business Owners, kept within 5..18.
3. Loan size from payment burden. A target burden (EMI / income) is drawn
   first: ordinary (0.03..0.45, mean 0.15) or stretched (0.35..0.75, mean
   0.51), stretched for 60 % of the lowest incomes falling to 20 % of the
   highest. Loan_Amount is the principal that burden affords at the loan's
   rate and tenure, but at most a per-loan ceiling of 40..100 % of the type's
   cap (1.5M Personal and Auto, 2M Home and Business), rounded to 1,000 and at
   least 50,000. About 15 % of loans end up heavy-burden (EMI > 40 % of income).
4. Monthly_EMI is the standard amortisation payment
   ``P r / (1 - (1 + r)^-n)`` with ``r = Interest_Rate / 1200``, 2 decimals.
5. Collateral_Value is 0 for Personal loans; otherwise Loan_Amount times
   1.1..1.6 (Home), 0.6..1.1 (Auto) or 0.6..1.6 (Business), 2 decimals.
6. Repayment. Months elapsed is uniform 1..tenure-1. A latent delinquency
   propensity rises with burden, interest rate, leverage (loan / annual
   income) and employment type (Self-Employed riskiest, then Business
   Owners), plus logistic noise; thresholds on it give
   Num_Missed_Payments 0 (about 61 %), 1, 2, or 3 + Poisson (capped at 12),
   and never more than the months elapsed.
7. Days_Past_Due is 0 with no missed payment, else 30 x missed minus 0..29.
8. Payment_History is On-Time exactly when nothing was missed; with 1-2 missed
   it is Delayed, with 3 or more Missed, except that 10 % of delinquent loans
   carry the other label (bureau flags are noisy).
9. Outstanding_Loan_Amount is the scheduled balance after the months elapsed
   plus the missed instalments (arrears), capped at Loan_Amount, 2 decimals.
10. Recovery_Status depends on what was known before collection and on the
    action taken. An ordinal latent grows with missed payments, days past
    due and burden, falls with collateral cover (collateral / outstanding,
    capped at 2); the action's shift (rule 13) is added, then Gaussian noise
    (sd 1.5) drawn once per loan (rule 15). Fixed thresholds (0.51, 2.72)
    give, on a book collected under the old policy (rule 14), about 59 %
    Fully Recovered, 31 % Partially Recovered, 10 % Written Off. A model on
    the ten pre-collection features of the resolved loans finds a real but
    imperfect signal (RandomForest out-of-bag ROC AUC about 0.78 on 4,000
    loans, 0.80 on 20,000).
11. Collection follows the action, never the outcome. Collection_Method is
    Legal Notice under legal action, Settlement Offer under settlement, and
    under reminders Calls, or Debt Collectors once two or more payments are
    missed. Legal_Action_Taken is "Yes" exactly when legal action was taken.
    Collection_Attempts is uniform in 0..5 (reminders), 1..6 (settlement) or
    3..10 (legal), from the loan's own random number (rule 15). On a fresh
    book about 79 % Calls, 19 % Debt Collectors, 1.6 % Legal Notice and
    0.5 % Settlement Offer.
12. Population. A :class:`Population` can shift the book away from the one
    above, for drift monitoring: ``income_scale`` multiplies every monthly
    income (before loan sizes are drawn, so loans shrink with it) and
    ``delinquency_shift`` is added to the delinquency propensity (rule 6), so
    more payments are missed and days past due grow, and recovery worsens
    through rule 10. :data:`DRIFTED` (incomes 30 % lower, propensity +1.3)
    is the documented drifted population (``loan-recovery generate --drift``).
13. True action effects (:mod:`loan_recovery.generate.lender`). Every loan has
    a true probability of full recovery under each action (reminders,
    settlement, legal): the latent of rule 10 shifted by the action. Reminders
    are the baseline (no shift). Settlement shifts it by -4.8 x stretch, where
    stretch ramps from 0 at an EMI / income burden of 0.15 to 1 at 0.45: it
    helps stretched borrowers settle, and does nothing for those who can pay.
    Legal action shifts it by 0.4 - 5.0 x security x arrears: security ramps
    with collateral cover from 0.4 to 1.0 (the balance is enforceable),
    arrears with days past due from 0 to 90; without security, or barely
    delinquent, only the +0.4 of costs and a damaged relationship remains.
    Under the provisional economics of :mod:`loan_recovery.generate.economics`
    the best action per open loan is worth about 8 % more expected net value
    than reminders for everyone (``benchmarks/simulated_lender_value.py``).
    The effects are pluggable (``ActionEffects``); ``SegmentStepEffects`` is
    a second truth, built on other columns as steps, for issue 28's tests.
14. The old policy. The resolved loans of a fresh book were collected by the
    lender's old rule, never at random: legal action at 150 or more days past
    due, else settlement for burdens of 0.6 or more with three or more missed
    payments, else reminders (about 1.6 %, 0.5 % and 98 % of loans). Their
    outcomes are therefore confounded with the action (the rule picks the
    action from the same facts that drive recovery, and no loan of a kind
    ever got another action): effects must never be learned from them, only
    from randomised decisions (issue 28). An open loan's outcome in the truth
    file is its outcome under reminders, so a loan the old policy left to
    reminders has the same outcome open or resolved, whatever the open share.
15. Per-loan random numbers. The outcome noise (rule 10) and the attempts
    (rule 11) come from uniforms keyed by a stable hash of the loan id and the
    seed, not from the chunk's stream: a loan draws the same noise under every
    action (common random numbers), in any book, and next month's book
    (``generate --next-from``) resolves a loan reproducibly under whatever
    action the decision log assigned it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from loan_recovery.config import category_values

Columns = dict[str, np.ndarray]
"""Generated columns keyed by snake_case name; categories as codes into config lists."""


@dataclass(frozen=True)
class Population:
    """Who is in the book: the base population, or one shifted for drift (rule 12)."""

    income_scale: float = 1.0
    delinquency_shift: float = 0.0


BASE = Population()
DRIFTED = Population(income_scale=0.7, delinquency_shift=1.3)

# --- distributions (category values come from dbt_project.yml; only weights live here) ---

GENDER_WEIGHTS = {"Male": 0.62, "Female": 0.38}
EMPLOYMENT_WEIGHTS = {"Salaried": 0.58, "Self-Employed": 0.31, "Business Owner": 0.11}
LOAN_TYPE_WEIGHTS = {"Personal": 0.44, "Home": 0.29, "Auto": 0.17, "Business": 0.10}
DEPENDENTS_WEIGHTS = (0.25, 0.25, 0.24, 0.21, 0.05)  # 0..4 dependents
TENURE_WEIGHTS = {12: 0.09, 24: 0.12, 36: 0.19, 48: 0.22, 60: 0.22, 72: 0.16}

AGE_RANGE = (21, 64)
INCOME_RANGE = (15_000.0, 250_000.0)
# Beta(a, b) of income within INCOME_RANGE: Business Owners earn more and vary more.
INCOME_BETA = {"Salaried": (2.2, 2.8), "Self-Employed": (1.8, 2.6), "Business Owner": (1.6, 1.4)}

RATE_LIMITS = (5.0, 18.0)
RATE_BAND = {
    "Personal": (9.0, 17.0),
    "Home": (5.0, 11.0),
    "Auto": (6.5, 13.0),
    "Business": (8.0, 16.5),
}
RATE_PREMIUM = {"Salaried": 0.0, "Self-Employed": 0.75, "Business Owner": 0.5}

AMOUNT_LIMITS = (50_000.0, 2_000_000.0)
AMOUNT_CAP = {
    "Personal": 1_500_000.0,
    "Home": 2_000_000.0,
    "Auto": 1_500_000.0,
    "Business": 2_000_000.0,
}
CEILING_SHARE = 0.4
"""A loan's ceiling is its type's cap times U(CEILING_SHARE, 1), so capped loans do not heap."""

# Target burden (EMI / income): share stretched, and (low, high, beta a, beta b) per group.
STRETCHED_SHARE = (0.6, 0.2)  # at the lowest and highest income
ORDINARY_BURDEN = (0.03, 0.45, 2.0, 5.0)
STRETCHED_BURDEN = (0.35, 0.75, 2.0, 3.0)
HEAVY_BURDEN = 0.4
"""EMI / income above which a loan counts as heavy-burden (a common affordability cap)."""

COLLATERAL_COVER = {
    "Personal": (0.0, 0.0),
    "Home": (1.1, 1.6),
    "Auto": (0.6, 1.1),
    "Business": (0.6, 1.6),
}

# Delinquency propensity: coefficients, thresholds for 0 / 1 / 2 / 3+ missed payments.
# Thresholds were calibrated once, on a 300,000-loan book, to give Payment_History
# about 61 / 28 / 11 % (rule 8); recalibrate them if a coefficient changes.
DELINQUENCY_BURDEN = 5.0  # per unit of EMI / income
DELINQUENCY_RATE = 0.12  # per interest-rate point above 11 %
DELINQUENCY_LEVERAGE = 0.5  # per unit of log(loan / annual income)
DELINQUENCY_EMPLOYMENT = {"Salaried": 0.0, "Self-Employed": 0.45, "Business Owner": 0.25}
MISSED_THRESHOLDS = (1.48, 2.54, 3.69)
MISSED_TAIL_RATE = 1.2  # Poisson mean per unit of propensity above the last threshold
MAX_MISSED = 12
HISTORY_NOISE = 0.10

# --- category helpers ---


def values_of(column: str) -> list[str]:
    """The canonical values of a category column, in ``dbt_project.yml`` order."""
    return category_values()[column]


def code_of(column: str, value: str) -> int:
    """The code of ``value`` in ``column``; fails loudly if the config renamed it."""
    values = values_of(column)
    if value not in values:
        raise ValueError(f"category_values.{column} in dbt_project.yml has no {value!r}: {values}")
    return values.index(value)


def _by_code(column: str, table: Mapping[str, float]) -> np.ndarray:
    """A per-value table as an array indexed by category code.

    The table must name exactly the configured values, so that a changed
    category list in ``dbt_project.yml`` stops the generator instead of
    silently shifting weights onto the wrong values.
    """
    values = values_of(column)
    if set(table) != set(values):
        raise ValueError(
            f"generator has values {sorted(table)} for {column} but dbt_project.yml "
            f"category_values.{column} is {values}"
        )
    return np.array([table[value] for value in values], dtype=np.float64)


def _draw_codes(rng: np.random.Generator, probabilities: np.ndarray, n: int) -> np.ndarray:
    """Codes drawn from one categorical distribution (weights need not sum to 1)."""
    cumulative = np.cumsum(probabilities) / probabilities.sum()
    codes = np.searchsorted(cumulative, rng.random(n), side="right")
    return np.minimum(codes, len(probabilities) - 1).astype(np.int8)


# --- one concern per helper ---


def _borrower_profile(rng: np.random.Generator, n: int, population: Population) -> Columns:
    """Who borrows: age, gender, employment, income and dependents (rules 1 and 12)."""
    employment = _draw_codes(rng, _by_code("employment_type", EMPLOYMENT_WEIGHTS), n)
    beta_a = _by_code("employment_type", {k: v[0] for k, v in INCOME_BETA.items()})
    beta_b = _by_code("employment_type", {k: v[1] for k, v in INCOME_BETA.items()})
    low, high = INCOME_RANGE
    drawn = low + (high - low) * rng.beta(beta_a[employment], beta_b[employment])
    income = np.round(drawn * population.income_scale)
    return {
        "age": rng.integers(AGE_RANGE[0], AGE_RANGE[1] + 1, size=n),
        "gender": _draw_codes(rng, _by_code("gender", GENDER_WEIGHTS), n),
        "employment_type": employment,
        "monthly_income": income,
        "num_dependents": _draw_codes(rng, np.array(DEPENDENTS_WEIGHTS), n).astype(np.int64),
    }


def amortisation_payment(
    amount: np.ndarray, annual_rate_pct: np.ndarray, months: np.ndarray
) -> np.ndarray:
    """The level monthly payment that repays ``amount`` over ``months`` (unrounded).

    Used both ways: for Monthly_EMI, and with ``amount = 1`` to turn an
    affordable payment into a principal. Rates are always > 0 here.
    """
    r = annual_rate_pct / 1200.0
    return amount * r / (1.0 - (1.0 + r) ** -months)


def _scheduled_balance(
    amount: np.ndarray, annual_rate_pct: np.ndarray, months: np.ndarray, paid: np.ndarray
) -> np.ndarray:
    """Principal still owed after ``paid`` on-schedule instalments of a level-payment loan."""
    growth = 1.0 + annual_rate_pct / 1200.0
    full = growth**months
    return amount * (full - growth**paid) / (full - 1.0)


def _draw_burden(rng: np.random.Generator, income: np.ndarray) -> np.ndarray:
    """Target EMI / income: a mixture, so a real share of loans are heavy-burden (rule 3).

    Lower incomes are stretched more often, as in real books, which also keeps
    heavy burdens from being undone by the amount caps that bind rich borrowers.
    """
    position = (income - INCOME_RANGE[0]) / (INCOME_RANGE[1] - INCOME_RANGE[0])
    poorest, richest = STRETCHED_SHARE
    stretched = rng.random(len(income)) < poorest + (richest - poorest) * position
    low = np.where(stretched, STRETCHED_BURDEN[0], ORDINARY_BURDEN[0])
    high = np.where(stretched, STRETCHED_BURDEN[1], ORDINARY_BURDEN[1])
    a = np.where(stretched, STRETCHED_BURDEN[2], ORDINARY_BURDEN[2])
    b = np.where(stretched, STRETCHED_BURDEN[3], ORDINARY_BURDEN[3])
    return low + (high - low) * rng.beta(a, b)


def _loan_terms(rng: np.random.Generator, borrower: Columns) -> Columns:
    """What was lent: type, tenure, rate, amount sized by burden, EMI, collateral (rules 2-5)."""
    n = len(borrower["age"])
    loan_type = _draw_codes(rng, _by_code("loan_type", LOAN_TYPE_WEIGHTS), n)
    tenures = np.array(list(TENURE_WEIGHTS), dtype=np.int64)
    tenure = tenures[_draw_codes(rng, np.array(list(TENURE_WEIGHTS.values())), n)]

    band_low = _by_code("loan_type", {k: v[0] for k, v in RATE_BAND.items()})[loan_type]
    band_high = _by_code("loan_type", {k: v[1] for k, v in RATE_BAND.items()})[loan_type]
    premium = _by_code("employment_type", RATE_PREMIUM)[borrower["employment_type"]]
    rate = rng.uniform(band_low, band_high) + premium
    rate = np.round(np.clip(rate, *RATE_LIMITS), 2)

    income = borrower["monthly_income"]
    affordable = _draw_burden(rng, income) * income
    amount = affordable / amortisation_payment(np.ones(n), rate, tenure)
    # A per-loan ceiling below the product cap keeps capped loans spread out, not heaped.
    cap = np.minimum(_by_code("loan_type", AMOUNT_CAP)[loan_type], AMOUNT_LIMITS[1])
    ceiling = cap * rng.uniform(CEILING_SHARE, 1.0, size=n)
    amount = np.clip(np.round(np.minimum(amount, ceiling), -3), AMOUNT_LIMITS[0], cap)

    cover_low = _by_code("loan_type", {k: v[0] for k, v in COLLATERAL_COVER.items()})[loan_type]
    cover_high = _by_code("loan_type", {k: v[1] for k, v in COLLATERAL_COVER.items()})[loan_type]
    collateral = np.round(amount * rng.uniform(cover_low, cover_high), 2)

    return {
        "loan_type": loan_type,
        "loan_tenure": tenure,
        "interest_rate": rate,
        "loan_amount": amount,
        "monthly_emi": np.round(amortisation_payment(amount, rate, tenure), 2),
        "collateral_value": collateral,
    }


def _repayment(
    rng: np.random.Generator, borrower: Columns, terms: Columns, population: Population
) -> Columns:
    """How the borrower has paid so far: missed payments, arrears, history (rules 6-9, 12)."""
    n = len(borrower["age"])
    tenure = terms["loan_tenure"]
    elapsed = rng.integers(1, tenure)  # at least one instalment due, at least one still to come

    burden = terms["monthly_emi"] / borrower["monthly_income"]
    leverage = terms["loan_amount"] / (12.0 * borrower["monthly_income"])
    employment = _by_code("employment_type", DELINQUENCY_EMPLOYMENT)[borrower["employment_type"]]
    propensity = (
        DELINQUENCY_BURDEN * burden
        + DELINQUENCY_RATE * (terms["interest_rate"] - 11.0)
        + DELINQUENCY_LEVERAGE * np.log(leverage)
        + employment
        + population.delinquency_shift
        + rng.logistic(size=n)
    )
    first, second, third = MISSED_THRESHOLDS
    tail = rng.poisson(MISSED_TAIL_RATE * np.maximum(propensity - third, 0.0))
    missed = np.select(
        [propensity < first, propensity < second, propensity < third],
        [0, 1, 2],
        default=3 + tail,
    )
    missed = np.minimum(np.minimum(missed, MAX_MISSED), elapsed)

    days_past_due = np.where(missed > 0, 30 * missed - rng.integers(0, 30, size=n), 0)

    on_time = code_of("payment_history", "On-Time")
    delayed = code_of("payment_history", "Delayed")
    missed_label = code_of("payment_history", "Missed")
    usual = np.where(missed >= 3, missed_label, delayed)
    other = np.where(missed >= 3, delayed, missed_label)
    history = np.where(rng.random(n) < HISTORY_NOISE, other, usual)
    history = np.where(missed == 0, on_time, history).astype(np.int8)

    amount = terms["loan_amount"]
    balance = _scheduled_balance(amount, terms["interest_rate"], tenure, elapsed)
    outstanding = np.minimum(balance + missed * terms["monthly_emi"], amount)
    return {
        "num_missed_payments": missed,
        "days_past_due": days_past_due,
        "payment_history": history,
        "outstanding_loan_amount": np.round(outstanding, 2),
    }


def draw_loans(rng: np.random.Generator, n: int, population: Population = BASE) -> Columns:
    """The pre-collection columns of ``n`` loans, drawn by rules 1-9 and 12 from one stream.

    What collection does next (rules 10, 11, 13-15) is the simulated lender's
    job (:mod:`loan_recovery.generate.lender`): it depends on the action taken,
    which the book decides.
    """
    borrower = _borrower_profile(rng, n, population)
    terms = _loan_terms(rng, borrower)
    repayment = _repayment(rng, borrower, terms, population)
    return {**borrower, **terms, **repayment}
