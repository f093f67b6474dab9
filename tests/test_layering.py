"""The import contract of ``../shared/DESIGN.md``, read from the source with ``ast`` (nothing is imported).

- Only ``mlflow_hitl.adapter`` talks to MLflow: no other module imports ``mlflow``.
- The pure layers (``checks``, ``review``, ``gate``) import nothing from ``adapter`` or ``cli``.
- No private name crosses a package: a module may import another subpackage's public names from that
  subpackage itself, never one of its ``_private`` modules or ``_private`` names. The root package's
  own modules (``mlflow_hitl._result``, ``_hashing``, ``errors``, ``config``...) are the shared core
  every layer may use.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mlflow_hitl"
PURE_LAYERS = ("checks", "review", "gate", "spark")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def _dotted(path: Path) -> list[str]:
    parts = ["mlflow_hitl", *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, absolute module, imported names)`` for every import in the file, lazy ones included."""
    here = _dotted(path)
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, module, [alias.name for alias in node.names]))
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "mlflow_hitl" else None


def _violations(path: Path) -> list[str]:
    here = ".".join(_dotted(path))
    layer = _layer(here + ".x") if path.name == "__init__.py" else _layer(here)
    where = f"{path.relative_to(PACKAGE.parent)}"
    problems = []
    for line, module, names in _imports(path):
        top = module.split(".")[0]
        if top == "mlflow" and layer != "adapter":
            problems.append(f"{where}:{line} imports {module}: only mlflow_hitl.adapter talks to MLflow")
        if top != "mlflow_hitl":
            continue
        target = _layer(module) if len(module.split(".")) > 2 else None
        if target is None and module.count(".") == 1 and module.split(".")[1] in {"adapter", "cli"}:
            target = module.split(".")[1]
        if layer in PURE_LAYERS and target in {"adapter", "cli"}:
            problems.append(f"{where}:{line} imports {module}: {layer}/ must not depend on {target}/")
        if target is None or target == layer:
            continue
        private_module = next((p for p in module.split(".")[2:] if p.startswith("_")), None)
        if private_module:
            problems.append(f"{where}:{line} imports {module}: {private_module} is private to {target}/")
        private_names = [n for n in names if n.startswith("_")]
        if private_names:
            problems.append(f"{where}:{line} imports {', '.join(private_names)} from {module}: private")
    return problems


def test_the_contract_sees_every_module():
    assert len(_modules()) > 40
    assert any(p.name == "app.py" for p in _modules())


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_keep_to_the_layers(path):
    assert _violations(path) == []


def test_the_contract_catches_a_breach(tmp_path, monkeypatch):
    """A pure layer importing MLflow, the adapter, or another package's private module is reported."""
    fake = tmp_path / "mlflow_hitl"
    (fake / "review").mkdir(parents=True)
    (fake / "review" / "bad.py").write_text(
        "import mlflow\nfrom ..adapter.gate import check_gate\nfrom ..gate._policy import _frozen\n"
    )
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    problems = _violations(fake / "review" / "bad.py")
    assert len(problems) == 4, problems
