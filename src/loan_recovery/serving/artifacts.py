"""What ``loan-recovery build`` does with the model registry, before and after dbt.

Before dbt (step ``model``): ``--model VERSION|approved`` (or a
``model_version`` in --vars) is resolved and verified, and the verified
bytes are copied into the build's directory; dbt's Python models read
only that copy. A refused artifact stops the build in one line, before
anything is built, so nothing is published.

Before dbt, a training build checks that it can write the registry (step
``register``, exit 2), so a read-only registry costs a second, not a build.

After a training build is verified (step ``register``): its fitted models
are saved as one artifact in the registry, with the model card it earned
on this book. A build whose outcome model fell back is not saved: there is
no outcome model to approve. The id it is saved under must be the
``model_version`` dbt already wrote into the marts (``int_model_version``
computes it the same way), so what a user sees is what ``models approve``
takes.

Also here: the shifted variables of the served build's ``model_monitoring``,
for the command's summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from loan_recovery.build_info import utc_stamp
from loan_recovery.config import reference
from loan_recovery.errors import EXIT_BAD_INPUT, EXIT_USAGE, BuildError, os_error_reason
from loan_recovery.modelling.registry import (
    APPROVED,
    REGISTRY_ENV,
    RegistryError,
    check_version,
    check_writable,
    model_facts,
    register,
    registry_dir,
    resolve,
)
from loan_recovery.modelling.status import TRAINED
from loan_recovery.serving.paths import BuildDir

MODEL_VERSION = "model_version"
"""The var that names the artifact a build scores with (empty: train)."""


@dataclass(frozen=True)
class Shift:
    """A model variable whose population moved: a row of model_monitoring."""

    variable: str
    variable_kind: str
    psi: float
    stability: str
    most_shifted_bin: str


def requested_model(model: str | None, settings: Mapping[str, Any]) -> str | None:
    """The artifact asked for: ``--model``, else a non-empty model_version in --vars.

    Either must be a version or 'approved' (--vars: a version); anything
    else is a usage error before the build starts.
    """
    given = settings.get(MODEL_VERSION) or None
    if model is not None and given is not None:
        raise BuildError(
            "settings",
            "give the model once: --model or model_version in --vars",
            exit_code=EXIT_USAGE,
        )
    wanted = model if model is not None else given
    if wanted is not None and wanted != APPROVED:
        try:
            check_version(str(wanted))
        except RegistryError as error:
            raise BuildError("settings", str(error), exit_code=EXIT_USAGE) from None
    return wanted


def stage_frozen_model(model: str, served: Path, build_dir: BuildDir) -> str:
    """Verify the artifact ``model`` names and copy it into the build; returns its version."""
    registry = registry_dir(served)
    try:
        artifact = resolve(model, registry, model_facts(reference()))
    except RegistryError as error:
        raise BuildError("model", str(error), exit_code=EXIT_BAD_INPUT) from None
    artifact.copy_to(build_dir.registry)
    return artifact.version


def check_registry_writable(served: Path) -> None:
    """Step ``register``, before dbt: a training build must be able to save its models.

    Probed by creating (and removing) a file in the registry, which catches a
    read-only file system and missing permissions alike; found after dbt,
    it cost the whole build.
    """
    registry = registry_dir(served)
    try:
        check_writable(registry)
    except OSError as error:
        raise BuildError(
            "register",
            f"the model registry {registry} cannot be written ({os_error_reason(error)}); "
            "a training build saves its models there: make it writable, set "
            f"{REGISTRY_ENV} to a folder that is, or score with --model",
            exit_code=EXIT_USAGE,
        ) from None


def _model_card(database: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The build's model card rows, and the model_version its marts carry."""
    with duckdb.connect(str(database), read_only=True) as connection:
        cursor = connection.execute(
            "select score_name, evaluated_loans, base_rate, roc_auc, roc_auc_ci_low, "
            "roc_auc_ci_high, brier_score, expected_calibration_error, training_rows, "
            "model_version, model_status from main.risk_model_metrics order by score_name"
        )
        names = [column[0] for column in cursor.description]
        card = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        (marts_version,) = connection.execute(
            "select model_version from main.run_settings"
        ).fetchone() or (None,)
    return card, marts_version


def register_trained_models(
    build_dir: BuildDir, served: Path, *, source: Mapping[str, Any]
) -> str | None:
    """Save a verified training build's models in the registry; its version, or None.

    None when the outcome model fell back (nothing worth approving).
    """
    card, marts_version = _model_card(build_dir.database)
    outcome = next((row for row in card if row["score_name"] == "outcome"), {})
    if outcome.get("model_status") != TRAINED:
        return None
    registry = registry_dir(served)
    try:
        version = register(
            build_dir.models,
            registry,
            facts=model_facts(reference()),
            model_card=card,
            created_at=utc_stamp(),
            source=source,
        )
    except (RegistryError, OSError) as error:
        detail = error.strerror if isinstance(error, OSError) else str(error)
        raise BuildError(
            "register", f"cannot save the trained models in {registry}: {detail}"
        ) from None
    if version != marts_version:
        raise BuildError(
            "register",
            f"the trained models were saved as {version} but the marts name model_version "
            f"{marts_version}: the model store changed during the build; rebuild",
        )
    return version


def shifted_variables(database: Path) -> list[Shift]:
    """The model variables not classed stable, most shifted first."""
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(
            "select variable, variable_kind, psi, stability, most_shifted_bin "
            "from main.model_monitoring where stability <> 'stable' order by psi desc, variable"
        ).fetchall()
    return [Shift(str(a), str(b), float(c), str(d), str(e)) for a, b, c, d, e in rows]
