"""Views, DRF viewsets, admin and pages ask which queues a user may reach through selectors, never through
entitlements.access itself (DESIGN.md, "Code shape"): one place fetches and checks, so a check cannot be skipped."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ["cases", "entitlements", "queues", "tasks", "workflow_project", "core"]
PRESENTATION = {"views", "api", "admin", "admin_console", "viewsets", "pages"}


def presentation_modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            names = {path.stem, *path.relative_to(ROOT).parts[:-1]}
            if "migrations" not in path.parts and names & PRESENTATION:
                yield path


def imports_access(tree: ast.AST, module_path: Path) -> list[int]:
    in_entitlements = module_path.relative_to(ROOT).parts[0] == "entitlements"
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            lines += [node.lineno for alias in node.names if alias.name.startswith("entitlements.access")]
        elif isinstance(node, ast.ImportFrom):
            module, names = node.module or "", {alias.name for alias in node.names}
            absolute = module == "entitlements.access" or (module == "entitlements" and "access" in names)
            relative = node.level > 0 and in_entitlements and (module == "access" or (not module and "access" in names))
            if absolute or relative:
                lines.append(node.lineno)
    return lines


def test_the_scan_finds_the_presentation_modules():
    found = {str(path.relative_to(ROOT)) for path in presentation_modules()}
    assert {"tasks/views.py", "tasks/api.py", "cases/views.py", "queues/admin.py", "entitlements/admin.py"} <= found


def test_the_scan_sees_each_way_of_importing_access():
    module = ROOT / "entitlements" / "admin.py"
    for source in (
        "import entitlements.access",
        "from entitlements.access import may",
        "from entitlements import access",
        "from .access import may",
        "from . import access",
    ):
        assert imports_access(ast.parse(source), module) == [1], source


def test_no_view_api_or_admin_module_imports_entitlements_access():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in presentation_modules()
        for line in imports_access(ast.parse(path.read_text(), filename=str(path)), path)
    ]
    assert offenders == [], "go through a selector (tasks/selectors.py, cases/selectors.py, queues/selectors.py)"
