"""registry.VERSION: the SQL copy of the version pattern, which plain dbt runs check, is the same.

Apart from test_registry.py, whose tests all build through the command (dbt),
so that this one runs in `make test-fast`.
"""

from __future__ import annotations

from loan_recovery.config import project_dir
from loan_recovery.modelling.registry import VERSION


def test_the_sql_check_of_model_version_uses_the_registrys_pattern() -> None:
    """validate_run_vars (plain dbt runs) and the registry judge a version alike."""
    macro = (project_dir() / "macros" / "validate_run_vars.sql").read_text(encoding="utf-8")
    assert f"modules.re.match('{VERSION.pattern}', model_version)" in macro
