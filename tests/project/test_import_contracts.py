"""The import contracts (pyproject.toml, [tool.importlinter]): the code keeps them, and an upward import breaks them.

Each probe runs lint-imports on a copy of the packages with one module added, so the real tree is never touched.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
PACKAGES = ("cases", "core", "entitlements", "queues", "tasks", "workflow_project")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path, *contracts: str) -> subprocess.CompletedProcess:
    selected = [argument for contract in contracts for argument in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *selected],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree_copy(tmp_path) -> Path:
    """The apps, core and the project package with the contracts, copied to a temporary folder."""
    for package in PACKAGES:
        shutil.copytree(BASE_DIR / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(BASE_DIR / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_code_keeps_every_import_contract():
    result = lint_imports(BASE_DIR)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_copied_tree_keeps_the_contracts_before_a_probe_is_added(tree_copy):
    result = lint_imports(tree_copy)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("probe", "source", "contract", "broken_import"),
    [
        (
            "queues/upward_probe.py",
            "from tasks.models import WorkflowTask\n",
            "layers",
            "queues.upward_probe -> tasks.models",
        ),
        ("tasks/upward_probe.py", "from cases.models import Case\n", "layers", "tasks.upward_probe -> cases.models"),
        (
            "core/upward_probe.py",
            "from entitlements.models import User\n",
            "layers",
            "core.upward_probe -> entitlements.models",
        ),
        (
            "entitlements/upward_probe.py",
            "from queues.models import WorkflowQueue\n",
            "entitlements",
            "entitlements.upward_probe -> queues.models",
        ),
        (
            "cases/project_probe.py",
            "from workflow_project import settings\n",
            "project",
            "cases.project_probe -> workflow_project.settings",
        ),
        (
            "core/project_probe.py",
            "from workflow_project.urls import urlpatterns\n",
            "project",
            "core.project_probe -> workflow_project.urls",
        ),
        (
            "tasks/spiff_probe.py",
            "from SpiffWorkflow.bpmn import BpmnWorkflow\n",
            "spiffworkflow",
            "tasks.spiff_probe -> SpiffWorkflow",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tree_copy, probe, source, contract, broken_import):
    (tree_copy / probe).write_text(f'"""An import the contracts forbid."""\n{source}')

    result = lint_imports(tree_copy, contract)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and "1 broken" in result.stdout
    assert broken_import in result.stdout
