"""Settings travel one way, in the configs: no library module keeps one in a module global.

A setting in a module global (a flag a context manager flips, a default a caller overwrites) reaches code
that never asked for it, leaks between calls and threads, and is a second channel beside the config that
should carry it (`io/stac.py`'s ``_TRUST_ANY`` was one: ``MapConfig.allow_any_asset_href`` carries it now).
Read with `ast` over every module under ``geocrop/``, the command line's included (its ``-q`` and the
warnings it holds while a command runs live in the run's click context, `geocrop.cli.progress.Output`):

- no ``global`` statement: rebinding a module name from a function is how such a setting is set;
- a module-level container that starts empty and is filled while running is a cache or a registry, never
  a setting: each is listed in `CACHES` with what it holds, and a new one fails until it is listed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "geocrop"

#: (module path under geocrop/, name) -> what it holds (never a setting).
CACHES: dict[tuple[str, str], str] = {
    ("io/atomic.py", "_swept"): "folders this process has already cleared of stale temporaries",
    ("inference/tiles.py", "_CACHE"): "predictors loaded in this worker process, by bundle",
    ("inference/device_feed.py", "_COPY_STREAMS"): "one CUDA copy stream per device",
    ("models/registry.py", "_BACKBONES"): "backbone builders, registered at import",
    ("models/registry.py", "_HEADS"): "head builders, registered at import",
    ("io/read_cache.py", "_USAGE"): "bytes each disk-cache folder holds, counted once per process",
}
_EMPTY_FACTORIES = {"set", "dict", "list", "defaultdict", "OrderedDict", "WeakValueDictionary"}


def _library() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def _starts_empty(value: ast.expr) -> bool:
    if isinstance(value, ast.List | ast.Set | ast.Tuple) and not value.elts:
        return isinstance(value, ast.List | ast.Set)
    if isinstance(value, ast.Dict) and not value.keys:
        return True
    if isinstance(value, ast.Call) and not value.args and not value.keywords:
        name = value.func.id if isinstance(value.func, ast.Name) else getattr(value.func, "attr", "")
        return name in _EMPTY_FACTORIES
    return False


def test_no_library_module_rebinds_a_global() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}: global {', '.join(node.names)}"
        for path in _library()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Global)
    ]
    assert not found, "a setting travels in its config, not in a module global:\n" + "\n".join(found)


def test_every_module_level_container_filled_at_run_time_is_a_known_cache() -> None:
    found = set()
    for path in _library():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (
                isinstance(node, ast.Assign | ast.AnnAssign)
                and node.value is not None
                and _starts_empty(node.value)
            ):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found |= {
                    (path.relative_to(ROOT).as_posix(), t.id) for t in targets if isinstance(t, ast.Name)
                }
    assert found - CACHES.keys() == set(), "list it in CACHES with what it holds (a cache, never a setting)"
    assert CACHES.keys() - found == set(), "a listed cache is gone: remove it from CACHES"


def test_the_check_finds_a_setting_kept_in_a_global() -> None:
    """The walk itself: a module that flips a flag from a function is caught."""
    tree = ast.parse("FLAG = False\ndef trust():\n    global FLAG\n    FLAG = True\n")
    assert any(isinstance(node, ast.Global) for node in ast.walk(tree))
    assert _starts_empty(ast.parse("_X = set()").body[0].value)  # type: ignore[attr-defined]
    assert not _starts_empty(ast.parse("_X = {'a': 1}").body[0].value)  # type: ignore[attr-defined]
