"""The layers contract of pyproject.toml: it holds, and an upward import breaks it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "sessions_app", "chunks_app", "pipeline_app", "storage_app", "lucid")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300
    )


def test_every_package_imports_only_the_packages_below_it():
    result = _lint_imports(REPO)

    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("core.errors", "sessions_app.models"),
        ("sessions_app.services", "chunks_app.models"),
        ("chunks_app.services", "pipeline_app.services"),
        ("pipeline_app.services", "storage_app.retention"),
        ("storage_app.retention", "lucid.health"),
    ],
)
def test_an_upward_import_breaks_the_contract(tmp_path, importer, imported):
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    module = tmp_path / f"{importer.replace('.', '/')}.py"
    module.write_text(f"{module.read_text()}\nimport {imported}  # noqa: E402, F401\n")

    result = _lint_imports(tmp_path)

    assert result.returncode != 0
    assert f"{importer} -> {imported}" in result.stdout
