"""The model registry: versioned, verified artifacts a later build scores with unchanged.

A lender trains and validates a model once, approves it, and then scores
every month's book with it until it is replaced. ``loan-recovery build``
therefore saves what a training build fitted as one *artifact*:

    <registry>/<version>/
        manifest.json          what the artifact is (below)
        segmentation/          scaler and centroids, segment names
        segment_score/         the write-up's forest
        outcome/               the outcome forest and its calibration
        monitoring/            the training population's bins, for drift

Each component is the model store's own format (:mod:`loan_recovery.modelling.model_store`):
JSON and ``.npz`` arrays read with ``allow_pickle=False``, so loading an
artifact parses numbers and never runs code. The training-only arrays (which
loans trained it) are left out.

The manifest records the version, a sha256 per file, the feature list and
category values, training rows, the model card, library versions and the
creation time. Loading verifies every file against it and parses exactly
the bytes it hashed; an artifact that was tampered with or truncated, built
for another feature list or category set, or saved by a scikit-learn that
cannot read its trees is refused with one line (:class:`RegistryError`).

The version is a hash of the four components' versions, so retraining on
the same book with the same settings gives the same version, and a
different model never takes an existing version's name. ``APPROVED`` names
the approved version and the sha256 of its manifest, so a manifest edited
after approval is refused too.

The registry is ``$LOAN_RECOVERY_REGISTRY``, else ``<served file>.registry``
beside the DuckDB file (``loan_recovery.duckdb.registry`` by default).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn

from loan_recovery.config import DB_PATH_ENV
from loan_recovery.modelling.model_store import (
    FILES,
    Component,
    ModelStoreError,
    component_from_files,
    frozen_copy,
    read_component,
    write_component,
)

REGISTRY_ENV = "LOAN_RECOVERY_REGISTRY"
MANIFEST = "manifest.json"
APPROVED_FILE = "APPROVED"
APPROVED = "approved"
"""What ``--model`` takes for the approved version."""
COMPONENTS = ("segmentation", "segment_score", "outcome", "monitoring")
"""The fitted models one artifact holds, by their model store names."""
VERSION = re.compile(r"^[0-9a-f]{12}$")
FORMAT = 1
"""The manifest format; an artifact of another format is refused."""


class RegistryError(ValueError):
    """An artifact cannot be used: unknown, tampered, or built for another project or library."""


def registry_dir(served: Path | None = None) -> Path:
    """``$LOAN_RECOVERY_REGISTRY``, else ``<served>.registry`` beside the DuckDB file.

    ``served`` defaults to ``$LOAN_RECOVERY_DB`` (what a plain ``dbt build``
    writes), else ``loan_recovery.duckdb``.
    """
    override = os.environ.get(REGISTRY_ENV)
    if override:
        return Path(override)
    database = served or Path(os.environ.get(DB_PATH_ENV, "loan_recovery.duckdb"))
    return database.with_name(database.name + ".registry")


def check_version(version: str) -> str:
    """A version as ``models list`` prints it (12 hex digits), or :class:`RegistryError`."""
    if not VERSION.match(version):
        raise RegistryError(
            f"model {version!r} is not a version: expected 12 hex digits as "
            "`loan-recovery models list` prints them, or 'approved'"
        )
    return version


def library_versions() -> dict[str, str]:
    """The versions of what reads and writes an artifact."""
    return {
        "python": ".".join(map(str, sys.version_info[:3])),
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
    }


def model_facts(reference: Mapping[str, Any]) -> dict[str, Any]:
    """What an artifact must share with the project that scores with it.

    From the ``reference`` vars: the feature lists and the category values
    the outcome model turns into 0/1 levels. A model trained on other
    features, or other levels, would read the wrong numbers.
    """
    categories = list(reference["outcome_categories"])
    return {
        "cluster_features": list(reference["cluster_features"]),
        "ratio_features": list(reference["ratio_features"]),
        "outcome_categories": categories,
        "category_values": {name: list(reference["category_values"][name]) for name in categories},
    }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifact_version(component_versions: Mapping[str, str]) -> str:
    """The artifact's version: a hash of its components' versions."""
    text = json.dumps(dict(sorted(component_versions.items())), sort_keys=True)
    return _sha256(text.encode("utf-8"))[:12]


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Artifact:
    """A verified artifact: its manifest and the bytes of every file, as hashed."""

    version: str
    manifest: dict[str, Any]
    manifest_bytes: bytes
    files: dict[str, bytes]

    def component(self, name: str) -> Component:
        """One component, parsed from the verified bytes."""
        prefix = f"{name}/"
        files = {
            path[len(prefix) :]: data
            for path, data in self.files.items()
            if path.startswith(prefix)
        }
        try:
            return component_from_files(name, files)
        except (ModelStoreError, ValueError, KeyError) as error:
            raise RegistryError(f"model {self.version}: {name} cannot be read: {error}") from None

    def copy_to(self, registry: Path) -> Path:
        """Write the verified bytes as ``registry/<version>``: what a build's dbt reads.

        A build scores with this copy, so the files dbt parses are the bytes
        checked here, whatever happens to the registry meanwhile.
        """
        directory = registry / self.version
        for path, data in self.files.items():
            (directory / path).parent.mkdir(parents=True, exist_ok=True)
            (directory / path).write_bytes(data)
        (directory / MANIFEST).write_bytes(self.manifest_bytes)
        return directory


def _read_manifest(directory: Path, version: str) -> tuple[dict[str, Any], bytes]:
    path = directory / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        known = ", ".join(_versions(directory.parent)) or "none"
        raise RegistryError(
            f"no model {version} in the registry {directory.parent} (versions: {known}); "
            "`loan-recovery models list` shows them"
        ) from None
    except OSError as error:
        raise RegistryError(f"model {version}: cannot read {path}: {error.strerror}") from None
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RegistryError(f"model {version}: {path} is not a manifest (not JSON)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RegistryError(f"model {version}: {path} is not a format-{FORMAT} manifest")
    if manifest.get("version") != version:
        raise RegistryError(
            f"model {version}: its manifest names version {manifest.get('version')!r}; "
            "the artifact was moved or edited"
        )
    return manifest, data


def _check_libraries(version: str, manifest: Mapping[str, Any]) -> None:
    saved = manifest.get("libraries", {}).get("scikit_learn")
    if saved != sklearn.__version__:
        raise RegistryError(
            f"model {version} was saved by scikit-learn {saved}; this is {sklearn.__version__}, "
            f"which cannot read its trees: install scikit-learn=={saved} or retrain"
        )


def _check_facts(version: str, manifest: Mapping[str, Any], facts: Mapping[str, Any]) -> None:
    saved = manifest.get("facts", {})
    for name, value in facts.items():
        if saved.get(name) != value:
            raise RegistryError(
                f"model {version} was built for {name} {saved.get(name)}, this project has "
                f"{value}: it cannot score this book; retrain"
            )


def open_artifact(
    version: str,
    registry: Path | None = None,
    *,
    facts: Mapping[str, Any] | None = None,
    manifest_sha256: str | None = None,
) -> Artifact:
    """Read and verify an artifact: every file against the manifest, and its fit.

    ``facts`` (the project's feature lists and category values,
    :func:`model_facts`) must equal the manifest's when given;
    ``manifest_sha256`` (from ``APPROVED``) pins the manifest itself.
    """
    check_version(version)
    directory = (registry or registry_dir()) / version
    manifest, manifest_bytes = _read_manifest(directory, version)
    if manifest_sha256 is not None and _sha256(manifest_bytes) != manifest_sha256:
        raise RegistryError(
            f"model {version}: its manifest changed after it was approved; approve it again"
        )
    _check_libraries(version, manifest)
    if facts is not None:
        _check_facts(version, manifest, facts)
    recorded = manifest.get("files", {})
    files: dict[str, bytes] = {}
    for path, expected in sorted(recorded.items()):
        name, _, file = path.partition("/")
        if name not in COMPONENTS or file not in FILES:
            raise RegistryError(f"model {version}: its manifest lists an unknown file {path!r}")
        try:
            data = (directory / name / file).read_bytes()
        except FileNotFoundError:
            raise RegistryError(
                f"model {version}: {path} is missing; the artifact is incomplete"
            ) from None
        except OSError as error:
            raise RegistryError(f"model {version}: cannot read {path}: {error.strerror}") from None
        if _sha256(data) != expected:
            raise RegistryError(
                f"model {version}: {path} does not match its sha256 in the manifest "
                f"({len(data)} bytes); the artifact was changed or truncated"
            )
        files[path] = data
    missing = [name for name in COMPONENTS if f"{name}/meta.json" not in files]
    if missing:
        raise RegistryError(f"model {version}: the manifest lists no {', '.join(missing)}")
    return Artifact(version, manifest, manifest_bytes, files)


def frozen_component(
    version: str | None, name: str, registry: Path | None = None
) -> Component | None:
    """The ``name`` component of the artifact ``version``; None when no version is given.

    What a dbt Python model calls with its ``model_version`` config: empty
    means train as usual, a version means score with that artifact.
    """
    if not version:
        return None
    return open_artifact(str(version), registry).component(name)


# --------------------------------------------------------------------------- writing


def _write_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def register(
    store: Path,
    registry: Path,
    *,
    facts: Mapping[str, Any],
    model_card: Sequence[Mapping[str, Any]],
    created_at: str,
    source: Mapping[str, Any] | None = None,
) -> str:
    """Save the model store's components as one artifact; returns its version.

    Written into a scratch directory and renamed into place, so a reader
    never sees half an artifact. A version already registered is verified
    and kept as it is (same components, same version).
    """
    components = {name: read_component(name, store) for name in COMPONENTS}
    versions = {name: str(component.meta["version"]) for name, component in components.items()}
    version = artifact_version(versions)
    target = registry / version
    if (target / MANIFEST).is_file():
        open_artifact(version, registry, facts=facts)
        return version
    registry.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=registry))
    try:
        files: dict[str, str] = {}
        for name, component in components.items():
            meta, arrays, forest = frozen_copy(component)
            written = write_component(name, meta, arrays, forest, scratch)
            for file in FILES:
                if (written / file).is_file():
                    files[f"{name}/{file}"] = _sha256((written / file).read_bytes())
        manifest = {
            "format": FORMAT,
            "version": version,
            "created_at": created_at,
            "components": versions,
            "files": files,
            "facts": dict(facts),
            "training_rows": {
                name: component.meta.get("training_rows") for name, component in components.items()
            },
            "model_card": [dict(row) for row in model_card],
            "population": components["monitoring"].meta.get("variables", []),
            "libraries": library_versions(),
            "source": dict(source or {}),
        }
        _write_manifest(scratch / MANIFEST, manifest)
        scratch.rename(target)
    except FileExistsError:
        open_artifact(version, registry, facts=facts)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return version


# --------------------------------------------------------------------------- approval and listing


def _versions(registry: Path) -> list[str]:
    if not registry.is_dir():
        return []
    return sorted(entry.name for entry in registry.iterdir() if VERSION.match(entry.name))


def approved(registry: Path) -> tuple[str, str] | None:
    """(version, manifest sha256) of the approved artifact, or None when none is."""
    path = registry / APPROVED_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return check_version(str(record["version"])), str(record["manifest_sha256"])
    except (ValueError, KeyError, TypeError):
        raise RegistryError(f"{path} is not an approval record; approve a version again") from None


def resolve(model: str, registry: Path, facts: Mapping[str, Any]) -> Artifact:
    """The artifact ``--model`` names (a version, or 'approved'), verified."""
    if model == APPROVED:
        record = approved(registry)
        if record is None:
            raise RegistryError(
                f"no model is approved in the registry {registry}; "
                "`loan-recovery models approve VERSION` approves one"
            )
        version, manifest_sha256 = record
        return open_artifact(version, registry, facts=facts, manifest_sha256=manifest_sha256)
    return open_artifact(check_version(model), registry, facts=facts)


def approve(version: str, registry: Path, *, approved_at: str) -> Artifact:
    """Mark a verified version as the approved one (written atomically)."""
    artifact = open_artifact(check_version(version), registry)
    manifest_bytes = (registry / version / MANIFEST).read_bytes()
    record = {
        "version": version,
        "manifest_sha256": _sha256(manifest_bytes),
        "approved_at": approved_at,
    }
    scratch = registry / f".{APPROVED_FILE}.{os.getpid()}"
    scratch.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(scratch, registry / APPROVED_FILE)
    return artifact


@dataclass(frozen=True)
class Listed:
    """One row of ``models list``."""

    version: str
    created_at: str | None
    training_rows: int | None
    roc_auc: float | None
    is_approved: bool
    problem: str | None
    """Why the artifact cannot be used (None: it verifies)."""


def _outcome_auc(model_card: Iterable[Mapping[str, Any]]) -> float | None:
    for row in model_card:
        if row.get("score_name") == "outcome":
            value = row.get("roc_auc")
            return float(value) if value is not None else None
    return None


def list_models(registry: Path) -> list[Listed]:
    """Every artifact in the registry, oldest first, each verified."""
    record = None
    try:
        record = approved(registry)
    except RegistryError:
        record = None
    rows = []
    for version in _versions(registry):
        problem = None
        manifest: dict[str, Any] = {}
        try:
            manifest = open_artifact(version, registry).manifest
        except RegistryError as error:
            problem = str(error)
            try:
                manifest, _ = _read_manifest(registry / version, version)
            except RegistryError:
                manifest = {}
        training = manifest.get("training_rows", {}).get("outcome")
        rows.append(
            Listed(
                version=version,
                created_at=manifest.get("created_at"),
                training_rows=int(training) if training is not None else None,
                roc_auc=_outcome_auc(manifest.get("model_card", [])),
                is_approved=record is not None and record[0] == version,
                problem=problem,
            )
        )
    return sorted(rows, key=lambda row: (row.created_at or "", row.version))
