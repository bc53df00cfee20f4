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
different model never takes an existing version's name.

The manifest carries the model card (training rows, AUC) that a reviewer
approves on, so the manifest itself is pinned too: ``MANIFESTS`` records
the sha256 of each manifest when the artifact is saved, and an artifact
whose manifest differs, or that the registry never saved (copied in from
another registry), is flagged by ``models list`` and refused by
``approve`` and ``build``. ``APPROVED`` names the approved version and the
sha256 of its manifest as approved. Both records are plain files beside the
artifacts: they catch accidental and casual edits, not someone who can
write the whole registry (file permissions guard against that).

Writers (register, approve) hold ``.lock`` (flock), so two builds saving
into one registry never lose each other's record; a scratch folder a killed
register left behind is removed by the next writer, and never listed.

The registry is ``$LOAN_RECOVERY_REGISTRY``, else ``<served file>.registry``
beside the DuckDB file (``loan_recovery.duckdb.registry`` by default).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn

from loan_recovery.config import DB_PATH_ENV
from loan_recovery.files import make_directory
from loan_recovery.modelling.model_store import (
    FILES,
    Component,
    ModelStoreError,
    component_from_files,
    frozen_copy,
    load_arrays,
    read_component,
    write_component,
)

REGISTRY_ENV = "LOAN_RECOVERY_REGISTRY"
MANIFEST = "manifest.json"
APPROVED_FILE = "APPROVED"
RECORD_FILE = "MANIFESTS"
"""The sha256 of every manifest the registry saved, by version."""
LOCK_FILE = ".lock"
SCRATCH = re.compile(r"^\.(?:[0-9a-f]{12}\.|APPROVED\.|MANIFESTS\.|probe\.)")
"""Names the registry's writers give their scratch files and folders: only these are cleaned."""
APPROVED = "approved"
"""What ``--model`` takes for the approved version."""
COMPONENTS = ("segmentation", "segment_score", "outcome", "monitoring")
"""The fitted models one artifact holds, by their model store names."""
VERSION = re.compile(r"^[0-9a-f]{12}$")
FORMAT = 1
"""The manifest format; an artifact of another format is refused."""


class RegistryError(ValueError):
    """An artifact cannot be used: unknown, tampered, or built for another project or library."""


class UntrustedManifestError(RegistryError):
    """The manifest is not the one the registry saved: its model card cannot be believed."""


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


# --------------------------------------------------------------------------- the registry's files


@contextlib.contextmanager
def registry_lock(registry: Path) -> Iterator[None]:
    """Hold the registry's flock while the block writes (created, at most rwxr-x---, if missing).

    Blocks until another writer is done: a register or approve takes a
    moment. The lock file is opened without following a symbolic link.
    """
    make_directory(registry)
    try:
        fd = os.open(
            registry / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640
        )
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise RegistryError(
                f"{registry / LOCK_FILE} is a symbolic link; refusing to follow it (remove it)"
            ) from None
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_atomically(path: Path, text: str) -> None:
    """Write ``path`` under a scratch name, flush it, rename it into place."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}")
    try:
        with scratch.open("x", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


def recorded_manifests(registry: Path) -> dict[str, str]:
    """Version -> sha256 of its manifest when saved (empty when nothing was saved)."""
    path = registry / RECORD_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError):
        raise RegistryError(f"{path} is not the registry's record of manifests") from None
    manifests = record.get("manifests") if isinstance(record, dict) else None
    if not isinstance(manifests, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in manifests.items()
    ):
        raise RegistryError(f"{path} is not the registry's record of manifests")
    return manifests


def record_manifest(registry: Path, version: str, manifest_sha256: str) -> None:
    """Record the sha256 of ``version``'s manifest (call with the registry lock held)."""
    manifests = {**recorded_manifests(registry), version: manifest_sha256}
    text = json.dumps({"format": FORMAT, "manifests": dict(sorted(manifests.items()))}, indent=2)
    _write_atomically(registry / RECORD_FILE, text + "\n")


def _check_recorded(version: str, registry: Path, manifest_bytes: bytes) -> None:
    recorded = recorded_manifests(registry).get(version)
    if recorded is None:
        raise UntrustedManifestError(
            f"model {version}: the registry has no record of its manifest (an artifact copied "
            f"in from another registry, or saved before {RECORD_FILE} existed); retrain it"
        )
    if recorded != _sha256(manifest_bytes):
        raise UntrustedManifestError(
            f"model {version}: its manifest is not the one saved (sha256 differs from the "
            f"registry's record in {RECORD_FILE}); restore it or retrain"
        )


def clean_scratch(registry: Path) -> list[Path]:
    """Remove what killed writers left (names :data:`SCRATCH` matches); hold the lock."""
    removed = []
    for entry in registry.iterdir():
        if not SCRATCH.match(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def check_writable(registry: Path) -> None:
    """Raise OSError unless a file can be created in ``registry`` (created if missing).

    A training build calls this before dbt runs, so a read-only registry
    stops it in a second, not after the whole build.
    """
    make_directory(registry)
    fd, probe = tempfile.mkstemp(prefix=".probe.", dir=registry)
    os.close(fd)
    os.unlink(probe)


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

    def check_components(self) -> None:
        """Parse every component (trees rebuilt, arrays read): what scoring will do, done now."""
        for name in COMPONENTS:
            self.component(name)

    def copy_to(self, registry: Path) -> Path:
        """Write the verified bytes as ``registry/<version>``: what a build's dbt reads.

        A build scores with this copy, so the files dbt parses are the bytes
        checked here, whatever happens to the registry meanwhile. The copy
        records its manifest too, so it verifies as the registry's own.
        """
        directory = registry / self.version
        for path, data in self.files.items():
            make_directory((directory / path).parent)
            (directory / path).write_bytes(data)
        (directory / MANIFEST).write_bytes(self.manifest_bytes)
        record_manifest(registry, self.version, _sha256(self.manifest_bytes))
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
    _check_shape(version, manifest)
    return manifest, data


def _is_count(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _is_number(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _check_shape(version: str, manifest: Mapping[str, Any]) -> None:
    """Every field the package reads has the type it expects, or one line naming the field."""

    def wrong(field: str, value: object, kind: str) -> RegistryError:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return RegistryError(f"model {version}: its manifest field {field} is {shown}, not {kind}")

    for field in ("components", "files", "facts", "training_rows", "libraries"):
        if not isinstance(manifest.get(field, {}), dict):
            raise wrong(field, manifest[field], "a mapping")
    for path, digest in manifest.get("files", {}).items():
        if not isinstance(digest, str):
            raise wrong(f"files.{path}", digest, "a sha256")
    created = manifest.get("created_at")
    if created is not None and not isinstance(created, str):
        raise wrong("created_at", created, "text")
    for name, rows in manifest.get("training_rows", {}).items():
        if not _is_count(rows):
            raise wrong(f"training_rows.{name}", rows, "a whole number")
    card = manifest.get("model_card", [])
    if not isinstance(card, list) or not all(isinstance(row, dict) for row in card):
        raise wrong("model_card", card, "a list of mappings")
    for index, row in enumerate(card):
        if not _is_number(row.get("roc_auc")):
            raise wrong(f"model_card[{index}].roc_auc", row["roc_auc"], "a number")


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

    The manifest must be the one the registry recorded when it saved the
    artifact (:data:`RECORD_FILE`); ``facts`` (the project's feature lists
    and category values, :func:`model_facts`) must equal the manifest's when
    given; ``manifest_sha256`` (from ``APPROVED``) pins the manifest as
    approved. Every ``.npz`` is read, without pickle, so an array only
    pickle could load is refused here even when its sha256 matches.
    """
    check_version(version)
    root = registry or registry_dir()
    directory = root / version
    manifest, manifest_bytes = _read_manifest(directory, version)
    _check_recorded(version, root, manifest_bytes)
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
        if path.endswith(".npz"):
            try:
                load_arrays(data, path)
            except ModelStoreError as error:
                raise RegistryError(f"model {version}: {error}") from None
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


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


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
    never sees half an artifact; the manifest's sha256 is recorded first.
    A version already registered is verified and kept as it is (same
    components, same version). Holds the registry lock throughout, and
    first removes the scratch folders of a register that was killed.
    """
    components = {name: read_component(name, store) for name in COMPONENTS}
    versions = {name: str(component.meta["version"]) for name, component in components.items()}
    version = artifact_version(versions)
    target = registry / version
    with registry_lock(registry):
        clean_scratch(registry)
        if (target / MANIFEST).is_file():
            open_artifact(version, registry, facts=facts)
            return version
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
                    name: component.meta.get("training_rows")
                    for name, component in components.items()
                },
                "model_card": [dict(row) for row in model_card],
                "population": components["monitoring"].meta.get("variables", []),
                "libraries": library_versions(),
                "source": dict(source or {}),
            }
            manifest_bytes = _manifest_bytes(manifest)
            (scratch / MANIFEST).write_bytes(manifest_bytes)
            # Recorded before the artifact appears: a kill in between leaves a
            # record of nothing, never an artifact the registry disowns.
            record_manifest(registry, version, _sha256(manifest_bytes))
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
        artifact = open_artifact(version, registry, facts=facts, manifest_sha256=manifest_sha256)
    else:
        artifact = open_artifact(check_version(model), registry, facts=facts)
    artifact.check_components()
    return artifact


def approve(version: str, registry: Path, *, approved_at: str) -> Artifact:
    """Mark a verified version as the approved one (written atomically, under the lock)."""
    check_version(version)
    if not (registry / version / MANIFEST).is_file():
        open_artifact(version, registry)  # says which versions there are
    with registry_lock(registry):
        clean_scratch(registry)
        artifact = open_artifact(version, registry)
        artifact.check_components()
        record = {
            "version": version,
            "manifest_sha256": _sha256(artifact.manifest_bytes),
            "approved_at": approved_at,
        }
        _write_atomically(registry / APPROVED_FILE, json.dumps(record, indent=2) + "\n")
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
        except UntrustedManifestError as error:
            problem, manifest = str(error), {}  # its figures are not shown: they may be forged
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
