"""The product never imports the lab: tinykd_lab may import tinykd, not the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> list[str]:
    """Every module an ``import`` or ``from … import`` statement of the file names."""
    modules = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.append(node.module)
    return modules


def test_no_product_module_imports_the_lab():
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / "tinykd").rglob("*.py"))
        for module in imported_modules(path)
        if module == "tinykd_lab" or module.startswith("tinykd_lab.")
    ]
    assert offenders == []


def test_the_check_sees_an_import_of_the_lab(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tinykd_lab.tasks import gan\n    import tinykd_lab\n")
    assert imported_modules(module) == ["tinykd_lab.tasks", "tinykd_lab"]


def test_the_lab_is_not_installed_with_the_product():
    import tomllib

    from setuptools import find_packages

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = find_packages(ROOT, include=include)
    assert {"tinykd", "tinykd.distill", "tinykd.measure.harness"} <= set(packages)
    assert [p for p in packages if p.startswith("tinykd_lab")] == []
