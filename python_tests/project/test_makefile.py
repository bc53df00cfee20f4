"""The Makefile finds a Python 3.11 to build the venv with, or says in one line what to install.

``make -n`` (print, do not run) on a copy of the Makefile, with a PATH that
holds only stand-in interpreters: a stand-in "is 3.11" when it exits 0 on
the version check. Nothing is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from loan_recovery.config import project_dir

MAKE = shutil.which("make")


def stand_in(directory: Path, name: str, *, is_311: bool) -> Path:
    path = directory / name
    path.write_text(f"#!/bin/sh\nexit {0 if is_311 else 1}\n")
    path.chmod(0o755)
    return path


def make_venv(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``make -n .venv/.installed`` in a copy of the project's Makefile, PATH = tmp_path/bin."""
    assert MAKE is not None, "make is needed (the README's first command)"
    shutil.copy(project_dir() / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").touch()
    return subprocess.run(
        [MAKE, "-n", ".venv/.installed", *arguments],
        cwd=tmp_path,
        env={"PATH": str(tmp_path / "bin")},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    return tmp_path / "bin"


def test_without_python_311_make_says_what_to_install_in_one_line(
    tmp_path: Path, bin_dir: Path
) -> None:
    stand_in(bin_dir, "python3", is_311=False)
    done = make_venv(tmp_path)
    assert done.returncode != 0
    assert "-m venv" not in done.stdout
    [line] = done.stderr.splitlines()
    assert "loan-recovery needs Python 3.11" in line
    assert "install python3.11" in line


def test_python311_is_preferred_to_another_python3(tmp_path: Path, bin_dir: Path) -> None:
    stand_in(bin_dir, "python3", is_311=False)
    wanted = stand_in(bin_dir, "python3.11", is_311=True)
    done = make_venv(tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{wanted} -m venv .venv" in done.stdout


def test_a_python3_that_is_311_will_do(tmp_path: Path, bin_dir: Path) -> None:
    wanted = stand_in(bin_dir, "python3", is_311=True)
    done = make_venv(tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{wanted} -m venv .venv" in done.stdout


def test_a_python_given_that_is_not_311_is_refused(tmp_path: Path, bin_dir: Path) -> None:
    stand_in(bin_dir, "python3.11", is_311=True)
    other = stand_in(bin_dir, "python3.10", is_311=False)
    done = make_venv(tmp_path, f"PYTHON={other}")
    assert done.returncode != 0
    [line] = done.stderr.splitlines()
    assert "loan-recovery needs Python 3.11" in line
