"""How `geocrop train` and `geocrop evaluate` read the options they share (where the labelled data comes
from, the split and the optimisation settings) where the CLI's reading is not the declared type's plain
one (`LABEL_TYPES`, for `geocrop.cli.declared.declared_options`). Their names, defaults and help are
`geocrop.training.labelled_options.LabelledOptions`'s declarations; the options keep `geocrop.api`'s
argument names, so a command passes them on as keywords."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


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
LABEL_TYPES: dict[str, Any] = {
    "labels": click.Path(path_type=Path),
    "steps": StepsType(),
    "scale": click.FloatRange(min=0, min_open=True),
    "min_parcels": MinParcelsType(),
    "epochs": click.IntRange(min=1),
    "batch_size": click.IntRange(min=2),
    "device": str,  # free text, not the declared choices: cuda:1 is a device too
}
