"""The type stub pgfast/_C.pyi names exactly what the extension exports."""

import ast
import pathlib

import pgfast
from pgfast import _C


def _stub_names():
    path = pathlib.Path(pgfast.__file__).with_name("_C.pyi")
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _module_names():
    return {n for n in dir(_C) if not n.startswith("_")}


def test_stub_matches_module_exports():
    stub, mod = _stub_names(), _module_names()
    assert stub - mod == set(), f"stubbed but not exported: {sorted(stub - mod)}"
    assert mod - stub == set(), f"exported but not stubbed: {sorted(mod - stub)}"


def test_stub_is_shipped_with_compiled_module():
    # The extension must be the compiled module, not a missing or pure-Python one.
    assert pathlib.Path(_C.__file__).suffix in (".so", ".pyd")
    assert pathlib.Path(pgfast.__file__).with_name("py.typed").exists()
