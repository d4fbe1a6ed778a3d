"""Options shared by `geocrop train` and `geocrop evaluate`: where the labelled data comes from, the split
and the optimisation settings. Their names, defaults and help are `geocrop.training.labelled_options.
LabelledOptions`'s declarations; this module adds only how the CLI parses some of them (`_TYPES`). The
options keep `geocrop.api`'s argument names, so a command passes them on as keywords."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from geocrop.cli.declared import help_text
from geocrop.cli.options import DATE, allow_any_asset_href_option
from geocrop.core.params import Declared, declared
from geocrop.training.labelled_options import LabelledOptions

F = TypeVar("F", bound=Callable[..., Any])


class MinParcelsType(click.ParamType):
    """``auto`` or a whole number >= 0."""

    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) or value == "auto":
            return value
        if not str(value).isdigit():
            self.fail(f"{value!r} is neither 'auto' nor a whole number >= 0; give auto or e.g. 5", param, ctx)
        return int(str(value))


class StepsType(click.ParamType):
    """``auto`` or a whole number >= 2."""

    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) or value == "auto":
            return value
        try:
            steps = int(str(value))
        except ValueError:
            self.fail(f"{value!r} is neither 'auto' nor a number; give auto or e.g. 36", param, ctx)
        if steps < 2:
            self.fail(f"{steps} is too few; give auto or at least 2", param, ctx)
        return steps


#: How the CLI parses the options whose text is not the declared type's plain reading (refusing bad values
#: before anything runs); the others read as their declared type.
_TYPES: dict[str, Any] = {
    "labels": click.Path(path_type=Path),
    "start": DATE,
    "end": DATE,
    "steps": StepsType(),
    "scale": click.FloatRange(min=0, min_open=True),
    "min_parcels": MinParcelsType(),
    "epochs": click.IntRange(min=1),
    "batch_size": click.IntRange(min=2),
    "device": str,  # free text, not the declared choices: cuda:1 is a device too
}


def _option(item: Declared) -> Callable[[F], F]:
    """One shared option from its declaration: flag, default, help; the type from `_TYPES`."""
    if item.name == "allow_any_asset_href":
        return allow_any_asset_href_option()
    extra: dict[str, Any] = {"help": help_text(item)}
    names = [item.flag, item.name]
    if item.base is bool:
        return click.option(*names, is_flag=True, **extra)
    plain = click.Choice(item.choices) if item.choices else item.base
    kind = _TYPES.get(item.name, plain)
    if item.multiple:
        return click.option(*names, type=kind, multiple=True, **extra)
    if item.required:
        return click.option(*names, type=kind, required=True, **extra)
    shown = item.default is not None
    return click.option(*names, type=kind, default=item.default, show_default=shown, **extra)


_OPTIONS = [_option(item) for item in declared(LabelledOptions)]


def label_options(func: F) -> F:
    """Decorate a click command with the shared options (in the order listed above)."""
    for option in reversed(_OPTIONS):
        func = option(func)
    return func
