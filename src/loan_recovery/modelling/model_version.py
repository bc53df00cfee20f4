"""The build's ``model_version``: the registry id of the four models that scored the book.

A user used to meet three ids called "model version": the registry id
``loan-recovery build`` printed, the outcome model's own content hash in the
marts and the report, and an empty ``run_settings.model_version`` on a
trained build. Only the registry id is something a user can act on
(``models list`` prints it, ``models approve`` and ``build --model`` take
it), so it is *the* ``model_version`` of every mart, ``run_settings``,
``build_info``, the report and the work queue.

The id is :func:`loan_recovery.modelling.registry.artifact_version` of the
four components' content hashes, which the four Python models emit as
columns (``segmentation_model_hash``, ``segment_model_hash``,
``outcome_model_hash``, ``population_bins_hash``). So dbt can compute it
after they ran, without the registry, and a plain ``dbt build`` names the
id ``loan-recovery build`` would save the same models as. Per build:

* trained: the id the models are (or would be) registered under;
* frozen: the artifact that scored the book (var ``model_version``). The
  components' hashes must give that same id; anything else means another
  model scored the book, and the build stops;
* the outcome model fell back: nothing is registered (there is no outcome
  model to approve), so ``model_version`` is NULL.

The content hashes stay in the intermediate tables, under names that say
what they are: the reason codes check the stored forest against them.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandas as pd
import pyarrow as pa

from loan_recovery.modelling.loan_source import LoanSource
from loan_recovery.modelling.registry import COMPONENTS, artifact_version

__all__ = ["HASH_COLUMNS", "SCHEMA", "build_model_version"]

HASH_COLUMNS = {
    "segmentation": "segmentation_model_hash",
    "segment_score": "segment_model_hash",
    "outcome": "outcome_model_hash",
    "monitoring": "population_bins_hash",
}
"""Each registry component and the column its Python model emits its content hash in."""

SCHEMA = pa.schema(
    [("model_version", pa.string()), *((column, pa.string()) for column in HASH_COLUMNS.values())]
)
"""The one row: the registry id, then the four content hashes it is made of."""


def _one_hash(
    component: str, models: pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation, session: object
) -> str | None:
    column = HASH_COLUMNS[component]
    rows, found = LoanSource.of(models, session).distinct([column])  # type: ignore[arg-type]
    values = found[column]
    if rows == 0:
        raise ValueError(f"no rows to read {column} from: nothing was scored")
    if len(values) != 1:
        shown = sorted(str(value) for value in values)
        raise ValueError(f"{column} holds {shown}: one model scores a build; rebuild")
    (value,) = values
    return None if value is None else str(value)


def build_model_version(
    models: Mapping[str, pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation],
    *,
    requested: str | None,
    session: duckdb.DuckDBPyConnection | None = None,
) -> pa.Table:
    """One row: ``model_version`` (the registry id, or NULL) and the four content hashes.

    ``models`` maps each registry component (:data:`HASH_COLUMNS`) to the
    output of its Python model (a dbt relation with its ``session``, or a
    frame). ``requested`` is var ``model_version``: empty for a training
    build, the artifact's id for a frozen one.

    Raises ``ValueError`` when a component is missing, a hash column holds
    more than one value, only the outcome model's hash may be NULL (it fell
    back) and a frozen build's hashes do not make the requested id.
    """
    missing = [name for name in COMPONENTS if name not in models]
    if missing:
        raise ValueError(f"the model version needs every component; missing {', '.join(missing)}")
    hashes = {name: _one_hash(name, models[name], session) for name in COMPONENTS}
    absent = [HASH_COLUMNS[name] for name, value in hashes.items() if value is None]
    if absent not in ([], [HASH_COLUMNS["outcome"]]):
        raise ValueError(f"{', '.join(absent)} is null: that model did not run; rebuild")
    version = None if absent else artifact_version({k: str(v) for k, v in hashes.items()})
    if requested and version != requested:
        raise ValueError(
            f"the models that scored this book make model {version}, not the requested "
            f"{requested}: the artifact copy was changed during the build; rebuild"
        )
    columns = [[version], *([hashes[name]] for name in HASH_COLUMNS)]
    return pa.table(columns, schema=SCHEMA)
