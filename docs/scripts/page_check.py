"""The generated parts of a docs page, and the tolerance by which a rerun may differ from them.

A page marks what a script produces with HTML comments (invisible once rendered):

- ``<!-- run: NAME -->`` before a ```` ```bash ```` block: the commands the script runs, as written;
- ``<!-- output: NAME -->`` before a bare ```` ``` ```` block: what those commands printed (normalised);
- ``<!-- table: NAME -->`` before a Markdown table: a table the script computes;
- ``<!--v:NAME-->`` right before a number in the prose (``<!--v:oa-->0.832``): one computed figure;
  names starting ``t_`` are the wall times and load of the last rewrite, never compared.

`check` compares a page with a rerun's parts; `rewrite` puts the rerun's parts into the page.

**Tolerance** (the run is deterministic on one machine; another CPU may round a float differently
and move a training run by a little): text must be identical; a number followed by ``s``, ``min`` or
``ms`` is a time and is not compared (it depends on the load; the page says the load); a percentage
(a number followed by ``%``) may differ by `PERCENT_POINTS`; a number written with a decimal point
or a thousands comma by `RELATIVE` of its value or one unit of its last digit, whichever is larger;
a whole number without a comma (a count of classes or series, an epoch, a date) must be equal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PERCENT_POINTS = 2.0
RELATIVE = 0.03

_BLOCK = re.compile(r"<!-- (run|output): (\w+) -->\n```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
_TABLE = re.compile(r"<!-- table: (\w+) -->\n((?:\|.*\n)+)")
_VALUE = re.compile(r"<!--v:(\w+)-->([\d,]+(?:\.\d+)?(?: ?%| s)?)")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_TIME = re.compile(r"\s?(s|min|ms)\b")
_PERCENT = re.compile(r"\s?%")


@dataclass(frozen=True)
class Parts:
    """What a page shows (or a rerun produced): commands, outputs, tables and single figures by name."""

    runs: dict[str, str]
    outputs: dict[str, str]
    tables: dict[str, str]
    values: dict[str, str]


def parts(page: str) -> Parts:
    """The generated parts of ``page``'s Markdown text."""
    runs: dict[str, str] = {}
    outputs: dict[str, str] = {}
    for kind, name, _lang, body in _BLOCK.findall(page):
        (runs if kind == "run" else outputs)[name] = body
    tables = {name: body for name, body in _TABLE.findall(page)}
    values = {name: value for name, value in _VALUE.findall(page)}
    return Parts(runs, outputs, tables, values)


def _agree(shown: str, new: str, following: str) -> bool:
    """Whether the number ``new`` may stand where the page shows ``shown`` (the module's tolerance)."""
    if _TIME.match(following):
        return True
    a, b = float(shown.replace(",", "")), float(new.replace(",", ""))
    if _PERCENT.match(following):
        return abs(a - b) <= PERCENT_POINTS
    if "." in shown or "," in shown:
        unit = 10.0 ** -len(shown.split(".")[1]) if "." in shown else 1.0
        return abs(a - b) <= max(RELATIVE * abs(a), unit)
    return shown == new


def differences(shown: str, new: str) -> list[str]:
    """Lines where ``new`` differs from ``shown`` beyond the tolerance, as ``page: ... / run: ...`` pairs."""
    old_lines, new_lines = shown.rstrip("\n").split("\n"), new.rstrip("\n").split("\n")
    found = []
    if len(old_lines) != len(new_lines):
        found.append(f"{len(old_lines)} lines on the page, {len(new_lines)} in the run")
    for old, fresh in zip(old_lines, new_lines, strict=False):
        if not _line_agrees(old, fresh):
            found.append(f"page: {old}\n    run:  {fresh}")
    return found


def _line_agrees(old: str, fresh: str) -> bool:
    if _NUMBER.sub("#", old) != _NUMBER.sub("#", fresh):
        return False
    olds, news = list(_NUMBER.finditer(old)), list(_NUMBER.finditer(fresh))
    return all(_agree(a.group(), b.group(), old[a.end() :]) for a, b in zip(olds, news, strict=True))


def check(page: str, run: Parts) -> list[str]:
    """Every disagreement between ``page`` and the rerun's ``run`` parts (empty: the page is true)."""
    shown = parts(page)
    problems: list[str] = []
    for kind in ("outputs", "tables", "values"):
        have: Mapping[str, str] = getattr(shown, kind)
        made: Mapping[str, str] = getattr(run, kind)
        # a run computes more than a page quotes; times and loads (t_*) are never compared
        for name in sorted(n for n in have if not n.startswith("t_")):
            if name not in made:
                problems.append(f"{kind} {name!r}: on the page, not produced by the run")
            elif kind == "values" and not _line_agrees(have[name], made[name]):
                problems.append(f"values {name!r}: page {have[name]}, run {made[name]}")
            elif kind in ("outputs", "tables"):
                problems += [f"{kind} {name!r}: {d}" for d in differences(have[name], made[name])]
    return problems


def rewrite(page: str, run: Parts) -> str:
    """``page`` with its outputs, tables and values replaced by the rerun's (commands stay as written)."""

    def block(match: re.Match[str]) -> str:
        kind, name, lang, body = match.groups()
        if kind == "output" and name in run.outputs:
            body = run.outputs[name].rstrip("\n") + "\n"
        return f"<!-- {kind}: {name} -->\n```{lang}\n{body}```"

    page = _BLOCK.sub(block, page)
    page = _TABLE.sub(lambda m: f"<!-- table: {m[1]} -->\n{run.tables.get(m[1], m[2])}", page)
    return _VALUE.sub(lambda m: f"<!--v:{m[1]}-->{run.values.get(m[1], m[2])}", page)
