"""The registry's files without dbt: the manifest record, refusals, scratch folders and modes.

Artifacts here are registered from a small model store made in-process (a
three-tree forest on random numbers), so every case runs in well under a
second; test_registry.py covers the same registry through real builds.
What is hostile here is the registry's content: a forged model card, a
pickle-bearing array whose sha256 was updated, a valid array swapped in
from another artifact, a manifest field of the wrong type, the scratch
folder a killed register leaves.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from conftest import sha256
from loan_recovery import cli
from loan_recovery.config import reference
from loan_recovery.errors import EXIT_BAD_INPUT, EXIT_OK
from loan_recovery.modelling import registry as reg
from loan_recovery.modelling.model_store import write_component
from loan_recovery.modelling.registry import MANIFEST, RegistryError

CREATED = "2026-01-01T00:00:00Z"


def model_store(root: Path, seed: int) -> Path:
    """The four components a training build keeps, tiny and different per seed."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(60, 3))
    label = features[:, 0] + rng.normal(size=60) > 0
    forest = RandomForestClassifier(n_estimators=3, random_state=seed).fit(features, label)
    meta = {"training_rows": 60}
    write_component(
        "segmentation",
        {**meta, "version": f"segmentation-{seed}"},
        {"centroids": rng.normal(size=(4, 3))},
        None,
        root,
    )
    write_component("segment_score", {**meta, "version": f"segment-{seed}"}, None, forest, root)
    write_component("outcome", {**meta, "version": f"outcome-{seed}"}, None, forest, root)
    write_component(
        "monitoring", {"version": f"monitoring-{seed}", "variables": []}, None, None, root
    )
    return root


def register(store: Path, registry: Path) -> str:
    return reg.register(
        store,
        registry,
        facts=reg.model_facts(reference()),
        model_card=[{"score_name": "outcome", "roc_auc": 0.71}],
        created_at=CREATED,
    )


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, str]:
    """A registry (beside served.duckdb) holding one artifact; (registry, version)."""
    registry = tmp_path / "served.duckdb.registry"
    return registry, register(model_store(tmp_path / "store", seed=1), registry)


def edit_manifest(registry: Path, version: str, edit: Callable[[dict[str, Any]], None]) -> None:
    path = registry / version / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def forge_card(manifest: dict[str, Any]) -> None:
    """What the red team did: AUC 0.99 on 50,000 training rows."""
    manifest["training_rows"]["outcome"] = 50_000
    manifest["model_card"][0]["roc_auc"] = 0.99


def models(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["models", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- forged model cards


def test_a_forged_model_card_is_flagged_by_list_and_refused_by_approve_and_build(
    saved: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry, version = saved
    edit_manifest(registry, version, forge_card)
    served = str(tmp_path / "served.duckdb")
    forged = (
        f"model {version}: its manifest is not the one saved (sha256 differs from the "
        "registry's record in MANIFESTS); restore it or retrain"
    )

    code, out, err = models("list", "--db", served, capsys=capsys)
    assert (code, err) == (EXIT_OK, "")
    row = next(line for line in out.splitlines() if line.startswith(version))
    assert f"UNUSABLE: {forged}" in row
    assert "50,000" not in row and "0.990" not in row  # the forged figures are not shown

    code, out, err = models("approve", "--db", served, version, capsys=capsys)
    assert code == EXIT_BAD_INPUT
    assert err.splitlines() == [f"loan-recovery models approve: {forged}"]
    assert not (registry / reg.APPROVED_FILE).exists()

    code = cli.main(["build", "--db", served, "--model", version])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.splitlines()[0] == f"build failed at step model: {forged}"
    assert "Traceback" not in err


def test_an_artifact_the_registry_never_saved_is_refused(
    saved: tuple[Path, str], tmp_path: Path
) -> None:
    """A whole artifact copied in from another registry has no record here."""
    registry, version = saved
    other = tmp_path / "other.registry"
    copied = register(model_store(tmp_path / "store2", seed=2), other)
    (other / copied).rename(registry / copied)
    with pytest.raises(RegistryError, match=f"model {copied}: the registry has no record"):
        reg.open_artifact(copied, registry)
    reg.open_artifact(version, registry)  # the registry's own artifact still opens


def test_the_record_is_written_at_register_and_matches_each_manifest(
    saved: tuple[Path, str], tmp_path: Path
) -> None:
    registry, version = saved
    second = register(model_store(tmp_path / "store2", seed=2), registry)
    assert second != version
    recorded = reg.recorded_manifests(registry)
    assert set(recorded) == {version, second}
    for each in (version, second):
        assert recorded[each] == sha256(registry / each / MANIFEST)
    # Registering the same models again keeps the artifact and its record.
    assert register(model_store(tmp_path / "store3", seed=1), registry) == version
    assert reg.recorded_manifests(registry) == recorded


# --------------------------------------------------------------------------- refused content


def rerecord(registry: Path, version: str) -> None:
    """Record the manifest now on disk as the saved one (someone who can write the registry)."""
    reg.record_manifest(registry, version, sha256(registry / version / MANIFEST))


def rewrite_file(registry: Path, version: str, path: str, data: bytes) -> None:
    """Replace one artifact file and update its sha256 wherever it is recorded.

    What someone who can write the whole registry can do: the checksums then
    match, and only reading the content can refuse it.
    """
    (registry / version / path).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    edit_manifest(registry, version, lambda manifest: manifest["files"].update({path: digest}))
    rerecord(registry, version)


def test_a_pickle_bearing_array_with_a_matching_checksum_is_refused(
    saved: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry, version = saved
    payload = tmp_path / "payload.npz"
    np.savez(payload, centroids=np.array([{"run": "code"}], dtype=object))
    rewrite_file(registry, version, "segmentation/arrays.npz", payload.read_bytes())
    refused = f"model {version}: segmentation/arrays.npz holds"
    with pytest.raises(RegistryError, match=refused):
        reg.open_artifact(version, registry)
    code = cli.main(["build", "--db", str(tmp_path / "served.duckdb"), "--model", version])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.splitlines()[0].startswith(f"build failed at step model: {refused}")


def test_a_valid_array_from_another_artifact_is_caught_by_its_sha256(
    saved: tuple[Path, str], tmp_path: Path
) -> None:
    """Another model's trees.npz: a valid zip (its own CRCs) of valid trees; only the hash knows."""
    registry, version = saved
    other = register(model_store(tmp_path / "store2", seed=2), tmp_path / "other.registry")
    theirs = (tmp_path / "other.registry" / other / "outcome" / "trees.npz").read_bytes()
    ours = registry / version / "outcome" / "trees.npz"
    assert theirs != ours.read_bytes()
    ours.write_bytes(theirs)
    with pytest.raises(RegistryError) as refused:
        reg.open_artifact(version, registry)
    assert str(refused.value) == (
        f"model {version}: outcome/trees.npz does not match its sha256 in the manifest "
        f"({len(theirs)} bytes); the artifact was changed or truncated"
    )


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("training_rows.outcome", "lots", "training_rows.outcome is 'lots', not a whole number"),
        ("training_rows.outcome", [1, 2], "training_rows.outcome is [1, 2], not a whole number"),
        ("training_rows", "many", "training_rows is 'many', not a mapping"),
        ("model_card", {"roc_auc": 1}, "model_card is {'roc_auc': 1}, not a list of mappings"),
        ("model_card.roc_auc", "high", "model_card[0].roc_auc is 'high', not a number"),
        ("created_at", 20260101, "created_at is 20260101, not text"),
        ("files", ["a"], "files is ['a'], not a mapping"),
    ],
)
def test_a_manifest_field_of_the_wrong_type_is_one_line_in_list(
    saved: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    field: str,
    value: object,
    why: str,
) -> None:
    registry, version = saved

    def edit(manifest: dict[str, Any]) -> None:
        section, _, name = field.partition(".")
        if section == "model_card" and name:
            manifest[section][0][name] = value
        elif name:
            manifest[section][name] = value
        else:
            manifest[section] = value

    edit_manifest(registry, version, edit)
    rerecord(registry, version)  # the record matches: only the shape is wrong
    code, out, err = models("--db", str(tmp_path / "served.duckdb"), "list", capsys=capsys)
    assert (code, err) == (EXIT_OK, "")
    assert "Traceback" not in out
    row = next(line for line in out.splitlines() if line.startswith(version))
    assert row.endswith(f"UNUSABLE: model {version}: its manifest field {why}")


# --------------------------------------------------------------------------- folders


def test_a_killed_registers_scratch_folder_is_cleaned_by_the_next_and_never_listed(
    saved: tuple[Path, str], tmp_path: Path
) -> None:
    registry, version = saved
    stale = registry / f".{'a' * 12}.k1ll3d"
    (stale / "outcome").mkdir(parents=True)
    (stale / "outcome" / "trees.npz").write_bytes(b"half")
    assert [row.version for row in reg.list_models(registry)] == [version]
    register(model_store(tmp_path / "store2", seed=2), registry)
    assert not stale.exists()
    assert not [entry.name for entry in registry.iterdir() if entry.name.startswith(".a")]


@pytest.fixture
def open_umask() -> Iterator[None]:
    original = os.umask(0)
    try:
        yield
    finally:
        os.umask(original)


def test_registry_folders_are_never_group_writable_or_open_to_others(
    tmp_path: Path, open_umask: None
) -> None:
    registry = tmp_path / "deep" / "served.duckdb.registry"
    version = register(model_store(tmp_path / "store", seed=1), registry)
    folders = [registry, *(path for path in registry.rglob("*") if path.is_dir())]
    assert registry / version in folders
    for folder in folders:
        mode = stat.S_IMODE(folder.stat().st_mode)
        assert mode & 0o027 == 0, f"{folder} is {oct(mode)}: at most rwxr-x--- is promised"


# --------------------------------------------------------------------------- the command


def test_models_takes_db_before_or_after_the_subcommand(
    saved: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry, version = saved
    served = str(tmp_path / "served.duckdb")
    before = models("--db", served, "list", capsys=capsys)
    after = models("list", "--db", served, capsys=capsys)
    assert before == after
    assert after[0] == EXIT_OK
    assert after[1].splitlines()[0] == f"registry {registry}"
    assert any(line.startswith(version) for line in after[1].splitlines())
    code, _, err = models("approve", "--db", served, version, capsys=capsys)
    assert (code, err) == (EXIT_OK, "")
    assert reg.approved(registry) is not None


def test_an_empty_registry_is_named_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(reg.REGISTRY_ENV, raising=False)
    code, out, _ = models("list", "--db", str(tmp_path / "x.duckdb"), capsys=capsys)
    assert code == EXIT_OK
    assert out.splitlines()[0] == f"registry {tmp_path / 'x.duckdb.registry'}"
