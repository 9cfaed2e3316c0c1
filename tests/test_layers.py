"""The package layers point one way along the data flow; no module imports itself back.

Every ``import tinykd…`` is read from the source (function-local ones too), so a lazy
import cannot hide an arrow that runs back up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinykd"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Module → the tinykd modules it imports (anywhere in its source)."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        found[_module_name(path)] = {name for name in targets if name.startswith("tinykd")}
    return found


IMPORTS = _imports()


def _importers(lower: str, upper: str) -> list[str]:
    """Modules of ``lower`` that import anything of ``upper``."""
    return sorted(
        f"{module} imports {target}"
        for module, targets in IMPORTS.items()
        if module == lower or module.startswith(lower + ".")
        for target in targets
        if target == upper or target.startswith(upper + ".")
    )


@pytest.mark.parametrize(
    "lower,upper",
    [
        ("tinykd.export", "tinykd.firmware"),
        ("tinykd.export", "tinykd.measure"),
        ("tinykd.firmware", "tinykd.measure"),  # firmware produces firmware; measure drives it
        ("tinykd.measure.harness", "tinykd.measure.devices"),  # devices use the protocol
        ("tinykd.measure", "tinykd.pipeline"),
        ("tinykd.measure", "tinykd.config"),
        ("tinykd.firmware", "tinykd.pipeline"),
        ("tinykd.pipeline", "tinykd.commands"),
        ("tinykd.measure", "tinykd.commands"),
        ("tinykd.firmware", "tinykd.commands"),
        ("tinykd.commands", "tinykd.cli"),
        ("tinykd.distill", "tinykd.training"),  # training builds on the losses and Distiller
        ("tinykd.distill", "tinykd.strategies"),
        ("tinykd.training", "tinykd.strategies"),  # strategies train with training.train
        ("tinykd.compress", "tinykd.pipeline"),
        ("tinykd.recipe", "tinykd.training"),  # the recipe is data; training reads it
    ],
)
def test_a_lower_layer_never_imports_the_one_that_drives_it(lower, upper):
    assert _importers(lower, upper) == []


def test_no_module_imports_itself_back():
    """No cycle in the module graph (a → b → … → a)."""
    known = set(IMPORTS)

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    graph = {
        module: {resolve(t) for t in targets} - {None, module, "tinykd"}
        for module, targets in IMPORTS.items()
    }
    cycles = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" → ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


def test_only_the_command_line_calls_the_commands():
    users = {
        module
        for module, targets in IMPORTS.items()
        if any(t.startswith("tinykd.commands") for t in targets)
        and not module.startswith("tinykd.commands")
    }
    assert users == {"tinykd.cli"}
