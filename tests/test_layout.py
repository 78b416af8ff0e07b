"""The package's layout: no import circle inside streid/, only the scripts import streid.cli,
and no library function takes an argparse namespace (the library takes typed options)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "streid"
CLI = "cli"  # the scripts' command line: it alone may know argparse


def library() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text()) for p in sorted(PACKAGE.glob("*.py"))}


def imported(tree: ast.Module, modules) -> set[str]:
    """The modules of the package that ``tree`` imports, at any depth (lazy imports too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1 or base == "streid" or base.startswith("streid."):
                base = base.removeprefix("streid").lstrip(".")
                if base:
                    found.add(base.split(".")[0])
                else:  # from . import x / from streid import x
                    found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("streid."))  # fmt: skip
    return found & set(modules)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle of the graph, as one path per strongly connected group (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def takes_namespace(tree: ast.Module) -> list[str]:
    """Functions with a parameter annotated ``Namespace`` or named ``args``, and modules that
    import argparse."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs:
                note = ast.unparse(arg.annotation) if arg.annotation else ""
                if arg.arg == "args" or "Namespace" in note:
                    found.append(f"{node.name}({arg.arg})")
        elif isinstance(node, ast.Import) and any(x.name == "argparse" for x in node.names):
            found.append("import argparse")
    return found


def test_no_import_circle_inside_the_package():
    modules = library()
    graph = {name: imported(tree, modules) - {name} for name, tree in modules.items()}
    assert cycles(graph) == []


def test_the_circle_finder_finds_circles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    lazy = ast.parse("def f():\n    from .ties import X\nfrom streid import cli, errors\n")
    assert imported(lazy, {"ties", "cli", "errors", "other"}) == {"ties", "cli", "errors"}


@pytest.mark.parametrize("name", sorted(set(library()) - {CLI}))
def test_only_the_scripts_import_cli(name):
    assert CLI not in imported(library()[name], library())


@pytest.mark.parametrize("name", sorted(set(library()) - {CLI}))
def test_no_library_function_takes_the_parsed_flags(name):
    assert takes_namespace(library()[name]) == []


def test_the_checks_see_a_namespace():
    tree = ast.parse("import argparse\ndef f(args): ...\ndef g(x: argparse.Namespace): ...\n")
    assert takes_namespace(tree) == ["import argparse", "f(args)", "g(x)"]
