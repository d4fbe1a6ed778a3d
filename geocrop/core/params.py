"""One declaration per parameter: a stage's frozen config declares each option once, every edge derives it.

How to declare an option (all a stage needs)::

    @dataclass(frozen=True, kw_only=True)
    class MapConfig:
        max_cloud: float | None = param(60.0, help="Skip scenes cloudier than this", unit="%",
                                        check=within(0, 100, "is not a percentage; give 0..100"))

        def __post_init__(self) -> None:
            settle(self)  # every declared field converted and checked, errors in library terms

- **name** is the field's name; **type** its annotation (``Literal[...]`` for choices, ``X | None`` when
  None is allowed, ``tuple[float, ...]`` for a repeatable value); **default** the first argument (leave it
  out for a required option; ``factory=`` for a mutable one).
- **help**: what the option means, one line; **unit** (``"%"``, ``"px"``, ``"MB"``) is shown beside it.
- **check**: value -> the problem in library terms or None (`within`, `at_least`, `one_of` make the usual
  ones); `settle` raises ``InputError("`name` VALUE <problem>", param="name")``. A ``Literal`` type is
  checked against its choices without one. Checks across fields stay in ``__post_init__`` after `settle`.
- **convert**: (value, name) -> value, the forms a caller may give normalised before the check
  (`as_path`, `as_source`, `as_aoi`, `as_bundle`, `as_floats` from `geocrop.core.inputs`, re-exported
  here; dates: `geocrop.core.temporal.as_date`). None is never
  converted.
- **flag** / **label**: the CLI flag and the QGIS label when the derived ones (``--max-cloud``, the help
  text) do not fit; **kind** what a text or path value is to an edge (``file``, ``bundle``, ``text``...);
  **metavar** the CLI's placeholder.
- **cli=False**, **qgis=False** hide the option from one edge (``qgis="NAME"`` names its QGIS parameter);
  **advanced=True** puts it among the advanced settings (QGIS); **api=False** makes it internal: no verb
  keyword, flag or QGIS parameter (a setting tests and benches tune: the size limits).

`declared(Config)` lists the declarations in field order (`Declared`: name, type, default, choices,
required...); `geocrop.cli.declared` turns them into click options and maps an error's ``param`` back to its
flag; `config_args(Config, locals())` picks a verb's config arguments, so a verb never forwards them one by
one. ``tests/core/test_params.py`` holds each public verb's signature equal to its config's fields.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeAlias, TypeVar

from geocrop.core.inputs import as_aoi, as_bundle, as_floats, as_path, as_source
from geocrop.errors import InputError

__all__ = [
    "Check",
    "Declared",
    "Device",
    "Param",
    "as_aoi",
    "as_bundle",
    "as_floats",
    "as_path",
    "as_source",
    "at_least",
    "config_args",
    "declaration",
    "declared",
    "device_check",
    "one_of",
    "param",
    "same_arguments_as",
    "settle",
    "signature_from",
    "values",
    "within",
]

#: Where a model runs: ``auto`` is CUDA when torch sees a GPU, else the CPU.
Device = Literal["auto", "cpu", "cuda"]
#: What an edge needs to know about a text or path value beyond its type: an input ``file`` (not a
#: folder) or ``folder``, a model ``bundle``, a ``vector`` layer, or an output: a ``raster_out`` map, a
#: ``page_out`` web page, a ``table_out`` (.gpkg/.parquet), a ``vector_out`` (.gpkg), a ``folder_out``.
Kind = Literal[
    "text",
    "file",
    "folder",
    "bundle",
    "vector",
    "raster_out",
    "page_out",
    "table_out",
    "vector_out",
    "folder_out",
]
#: value -> what is wrong with it, in library terms ("is outside 16..4096; 256 works well"), or None.
Check: TypeAlias = Callable[[Any], "str | None"]
#: (value, argument name) -> the value in the config's type; raises `InputError` naming the argument.
Convert: TypeAlias = Callable[[Any, str], Any]

_KEY = "geocrop"


@dataclass(frozen=True)
class Param:
    """How one config field reads at every edge (see the module docstring)."""

    help: str
    unit: str = ""
    check: Check | None = None
    convert: Convert | None = None
    flag: str | None = None
    label: str | None = None
    kind: Kind | None = None
    metavar: str | None = None
    cli: bool = True
    #: False: not a QGIS parameter; a str: its QGIS parameter name (default: the name in upper case).
    qgis: bool | str = True
    api: bool = True
    #: Shown among an edge's advanced settings (QGIS: "Advanced parameters").
    advanced: bool = False


def param(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    unit: str = "",
    check: Check | None = None,
    convert: Convert | None = None,
    flag: str | None = None,
    label: str | None = None,
    kind: Kind | None = None,
    metavar: str | None = None,
    cli: bool = True,
    qgis: bool | str = True,
    api: bool = True,
    advanced: bool = False,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field carrying its declaration (use as ``name: type = param(default, help=...)``)."""
    meta = {_KEY: Param(help, unit, check, convert, flag, label, kind, metavar, cli, qgis, api, advanced)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Declared:
    """One declared option of a config, as the edges read it."""

    name: str
    #: The annotation, resolved (``float | None``, ``Literal['auto', 'cpu']``, ``tuple[float, ...]``).
    type: Any
    #: The default value, or `dataclasses.MISSING` when the option is required.
    default: Any
    param: Param

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    @property
    def optional(self) -> bool:
        """None is a value this option takes."""
        return type(None) in typing.get_args(self.type)

    @property
    def _plain(self) -> Any:
        """The type without ``None`` (``float | None`` -> ``float``)."""
        args = [a for a in typing.get_args(self.type) if a is not type(None)]
        return args[0] if _is_union(self.type) and len(args) == 1 else self.type

    @property
    def base(self) -> Any:
        """The type without ``None``; a repeatable option's item type (``tuple[float, ...]`` -> float)."""
        return typing.get_args(self._plain)[0] if self.multiple else self._plain

    @property
    def multiple(self) -> bool:
        """A repeatable option (``tuple[X, ...]``, or ``None`` besides)."""
        args = typing.get_args(self._plain)
        return typing.get_origin(self._plain) is tuple and len(args) == 2 and args[1] is Ellipsis

    @property
    def choices(self) -> tuple[Any, ...]:
        """The ``Literal`` values of the option, or ()."""
        base = self.base
        return typing.get_args(base) if typing.get_origin(base) is Literal else ()

    @property
    def flag(self) -> str:
        return self.param.flag or "--" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        return self.param.label or self.param.help


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def declared(config: type | Any) -> tuple[Declared, ...]:
    """The declared fields of a config class (or instance), in field order."""
    cls = config if isinstance(config, type) else type(config)
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]), include_extras=False)
    found = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_KEY)
        if meta is None:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        found.append(Declared(f.name, hints[f.name], default, meta))
    return tuple(found)


def declaration(config: type | Any, name: str) -> Declared:
    """The declaration of one field of a config (`KeyError` when it declares no such field)."""
    for item in declared(config):
        if item.name == name:
            return item
    raise KeyError(name)


def settle(config: Any, *, season: tuple[str, str] | None = None) -> None:
    """Convert and check every declared field of a frozen config in place (call in ``__post_init__``);
    ``season`` names the config's first and last date fields, then settled as one
    `geocrop.core.temporal.Season` (the one season rule) whose dates replace them, so that the code the
    config goes to (`TemporalGrid`) takes them as settled instead of checking them again."""
    for item in declared(config):
        value = getattr(config, item.name)
        if value is None and item.optional:
            continue  # None is one of the option's values
        if item.param.convert is not None:  # it sees None only where None stands for a default
            value = item.param.convert(value, item.name)
        elif value is None:
            raise InputError(f"`{item.name}` is None; give {item.param.help.lower()}", param=item.name)
        elif item.multiple and isinstance(value, Iterable) and not isinstance(value, str):
            value = tuple(value)
        elif item.base is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        object.__setattr__(config, item.name, value)
        check = item.param.check or (one_of(*item.choices) if item.choices else None)
        problem = None if check is None else check(value)
        if problem is not None:
            raise InputError(f"`{item.name}` {show(value)} {problem}", param=item.name)
    if season is not None:
        from geocrop.core.temporal import settle_season  # numpy: only once a dated config is built

        settle_season(config, *season)


def values(config: Any) -> dict[str, Any]:
    """A config's declared verb arguments and their (converted, checked) values, to call a stage with."""
    return {d.name: getattr(config, d.name) for d in declared(config) if d.param.api}


def config_args(config: type, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of ``config`` among a verb's (its ``locals()``): the declared fields it takes."""
    names = {d.name for d in declared(config) if d.param.api}
    return {k: v for k, v in arguments.items() if k in names}


_P = ParamSpec("_P")
_R = TypeVar("_R")


def same_arguments_as(verb: Callable[_P, Any]) -> Callable[[Callable[..., _R]], Callable[_P, _R]]:
    """Give the decorated ``f(**arguments)`` the signature of ``verb`` (its keywords, types and
    defaults): for mypy through the `ParamSpec`, for ``help()`` and `inspect` through ``__signature__``.
    Two verbs that take the same arguments (`plan_map` and `map_aoi`) then state them once."""

    def adopt(f: Callable[..., _R]) -> Callable[_P, _R]:
        own = inspect.signature(f).return_annotation
        f.__signature__ = inspect.signature(verb).replace(return_annotation=own)  # type: ignore[attr-defined]
        return f

    return adopt


_F = TypeVar("_F", bound=Callable[..., Any])


def signature_from(config: type, arguments: type) -> Callable[[_F], _F]:
    """Give a verb ``f(*, own=..., **options: Unpack[Arguments])`` the signature users read in ``help()``:
    ``config``'s declared arguments in field order, typed as the `TypedDict` ``arguments`` types them (the
    forms a caller may give) and defaulted as ``config`` declares them, then the verb's own keywords.
    mypy checks a call against ``arguments``; verbs that share a group of keywords (`train` and
    `evaluate`) state it once, as a base `TypedDict`. ``arguments`` must name the config's arguments in
    its order and require exactly its required ones: a `TypeError` at import says where they drifted."""
    fields = [d for d in declared(config) if d.param.api]
    written = {name: _as_written(a) for name, a in arguments.__annotations__.items()}
    names, wanted = list(written), [d.name for d in fields]
    if names != wanted:
        raise TypeError(f"{arguments.__name__} lists {names}; {config.__name__} declares {wanted}")
    required = [d.name for d in fields if d.required]
    if [name for name, (_, needed) in written.items() if needed] != required:
        raise TypeError(f"{arguments.__name__} must mark exactly {required} Required[...]")
    keyword = inspect.Parameter.KEYWORD_ONLY
    declared_keywords = [
        inspect.Parameter(
            d.name,
            keyword,
            default=inspect.Parameter.empty if d.required else d.default,
            annotation=written[d.name][0],
        )
        for d in fields
    ]

    def adopt(f: _F) -> _F:
        signature = inspect.signature(f)
        own = [p for p in signature.parameters.values() if p.kind is keyword]
        f.__signature__ = signature.replace(parameters=[*declared_keywords, *own])  # type: ignore[attr-defined]
        return f

    return adopt


def _as_written(annotation: Any) -> tuple[str, bool]:
    """A `TypedDict` key's annotation as its module wrote it, without ``Required[...]``, and whether it is
    required (read from the text: under postponed annotations Python cannot tell it at run time)."""
    text = annotation.__forward_arg__ if isinstance(annotation, typing.ForwardRef) else str(annotation)
    if text.startswith("Required[") and text.endswith("]"):
        return text[len("Required[") : -1], True
    return text, False


def show(value: Any) -> str:
    """A value as a message quotes it: ``60``, ``0.5``, ``'cuda:x'``, ``/path/file.tif``."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


# -- checks ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class within:  # lower case: it reads as a check, check=within(0, 100)
    """A number in ``low..high`` (both included); ``problem`` words a miss (default "is outside ...").
    The bounds are data, so an edge can show them (a QGIS number's minimum and maximum)."""

    low: float
    high: float
    problem: str | None = None

    def __call__(self, value: Any) -> str | None:
        if isinstance(value, int | float) and self.low <= value <= self.high:
            return None
        return self.problem or f"is outside {self.low:g}..{self.high:g}; give a value in that range"


@dataclass(frozen=True)
class at_least:  # lower case: it reads as a check, check=at_least(1)
    """A number >= ``low`` (> ``low`` when ``strict``); ``problem`` words a miss (default "is below ...").
    The bound is data: the CLI shows it as the option's range."""

    low: float
    problem: str | None = None
    strict: bool = False

    def __call__(self, value: Any) -> str | None:
        if isinstance(value, int | float) and (value > self.low if self.strict else value >= self.low):
            return None
        if self.problem:
            return self.problem
        return (
            f"is not above {self.low:g}; give more"
            if self.strict
            else f"is below {self.low:g}; give at least {self.low:g}"
        )


def device_check(value: Any) -> str | None:
    """A torch device geocrop runs on: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    if value in ("auto", "cpu") or str(value).startswith("cuda"):
        return None
    return "is not auto, cpu or cuda[:N]; choose one of those"


def one_of(*choices: Any) -> Check:
    """One of ``choices``."""

    def check(value: Any) -> str | None:
        if value in choices:
            return None
        return f"is not one of {', '.join(map(str, choices))}; choose one of those"

    return check
