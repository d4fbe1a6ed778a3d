"""The library speaks one dialect: argument names in backticks, never a command-line flag.

Every string literal in `geocrop` outside `geocrop.cli` (f-string parts too; docstrings excepted, they
document, and a declaration's ``flag=`` override, which is the CLI's name for a parameter, not a message)
is read from the source with `ast`, and none may spell a flag such as ``--out``: the CLI turns `` `out` ``
into its own flag (`geocrop.cli.flags.in_flags`), the QGIS plugin into a parameter label, and a Python
caller reads the argument it wrote. Errors whose message names an argument also carry it in
``param``, so the edges know which input to point at.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import geocrop

PACKAGE = Path(geocrop.__file__).parent
#: A flag as a command line spells it: ``--out``, ``--max-cloud`` (not ``--`` alone, not ``a--b``).
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
#: An argument name in a library message.
ARGUMENT = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")
ERRORS = {"GeocropError", "InputError", "SourceError", "NoDataError", "BundleError", "OutputError"}

#: Flags that a file may spell because the strings are not messages, each with the reason: (file relative
#: to the package, flag). Keep it small and justify every entry.
NOT_MESSAGES: dict[tuple[str, str], str] = {
    ("models/head_families.py", "--head"): "head_table() writes the docs table of `geocrop train --head`",
    ("models/head_families.py", "--configs"): "the same table's column for `geocrop evaluate --configs N`",
    ("models/head_families.py", "--pooling"): "a head family's description, shown in that table only",
}

#: Errors that name arguments without knowing which one the caller gave, each with the reason.
WITHOUT_PARAM: dict[tuple[str, str], str] = {
    ("io/sources.py", "detect_source"): "any source argument (`stac`, `s2`, `s1`) may be the table it "
    "refuses; the message says where tables go",
    ("training/head_bundle.py", "_fail"): "the head file may come from `init` or `temporal`",
}


def _library_sources() -> Iterator[tuple[str, str]]:
    """(path relative to the package, source) of every module outside `geocrop.cli`."""
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if not rel.startswith("cli/"):
            yield rel, path.read_text(encoding="utf-8")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _flag_overrides(tree: ast.AST) -> set[int]:
    """The ``flag="--column"`` values of declarations (`geocrop.core.params.param`): CLI names."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword) and node.arg == "flag" and isinstance(node.value, ast.Constant)
    }


def flag_spellings(source: str) -> list[tuple[int, str, str]]:
    """(line, flag, string) for every flag spelled in a string literal of ``source`` (docstrings and
    declarations' ``flag=`` overrides excepted)."""
    tree = ast.parse(source)
    skipped = _docstrings(tree) | _flag_overrides(tree)
    found = []
    for node in ast.walk(tree):  # f-strings' literal parts are Constant nodes too
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            found.extend((node.lineno, flag, node.value) for flag in FLAG.findall(node.value))
    return found


def _message(node: ast.expr) -> str:
    """The literal text of an error's message argument (placeholders as ``{}``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp):
        return _message(node.left) + _message(node.right)
    return ""


def errors_without_param(source: str) -> list[tuple[str, int, str]]:
    """(function, line, message) of each error built with an argument name in its message and no ``param``."""
    found = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Name)
                and child.func.id in ERRORS
                and child.args
                and ARGUMENT.search(_message(child.args[0]))
                and not any(k.arg == "param" for k in child.keywords)
            ):
                found.append((function, child.lineno, _message(child.args[0])))
            visit(child, name)

    visit(ast.parse(source), "<module>")
    return found


def test_no_library_message_spells_a_flag() -> None:
    bad = [
        f"geocrop/{rel}:{line}: {flag} in {text[:80]!r}"
        for rel, source in _library_sources()
        for line, flag, text in flag_spellings(source)
        if (rel, flag) not in NOT_MESSAGES
    ]
    assert not bad, "library messages name arguments (`out`), not flags (--out):\n" + "\n".join(bad)


def test_errors_naming_an_argument_carry_it_in_param() -> None:
    bad = [
        f"geocrop/{rel}:{line} ({function}): {text[:80]!r}"
        for rel, source in _library_sources()
        for function, line, text in errors_without_param(source)
        if (rel, function) not in WITHOUT_PARAM
    ]
    assert not bad, "set param= on errors that name an argument:\n" + "\n".join(bad)


def test_the_allow_lists_name_what_exists() -> None:
    """An entry whose file or function is gone is dropped, so the lists stay small and true."""
    for rel, _flag in NOT_MESSAGES:
        assert (PACKAGE / rel).is_file(), rel
    for rel, function in WITHOUT_PARAM:
        assert f"def {function}(" in (PACKAGE / rel).read_text(encoding="utf-8"), (rel, function)


def test_the_walk_finds_flags_in_f_strings_and_skips_docstrings() -> None:
    source = '''
def f(out, n):
    """Writes ``--out`` (documentation, not a message)."""
    if n:
        raise InputError(f"--out {out} is a file; " "give --max-cloud 50", param="out")
    x = "a -- b, a--b, --, -v"
    columns = param(None, help="Parcel attribute to keep", flag="--column")
    raise InputError(f"`out` {out} is a folder")
'''
    assert [(flag, line) for line, flag, _ in flag_spellings(source)] == [("--out", 5), ("--max-cloud", 5)]
    assert [(fn, line) for fn, line, _ in errors_without_param(source)] == [("f", 8)]
