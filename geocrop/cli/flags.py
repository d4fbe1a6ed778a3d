"""The CLI's words for the library's argument names: `` `corruption_rate` `` -> ``--corruption``.

The library writes argument names in backticks (and sets ``param`` on its errors, `geocrop.errors`); every
place the CLI shows a library message (the error line of `geocrop.cli.main`, the ``--progress json`` error
event of `geocrop.cli.progress`, warnings) passes it through `in_flags`, the one translation. The flag of a
name comes from the running command's own options (`geocrop.cli.declared.flag_for`), so a command that
renames an option needs nothing else; one that spells an argument in a way no option's name gives (``n``
is ``--stratified`` or ``--uncertain`` in ``geocrop sample``) puts that in ``ctx.meta[FLAG_ALIASES]``.
"""

from __future__ import annotations

import click

from geocrop.errors import as_flag, translate_arguments

__all__ = ["FLAG_ALIASES", "in_flags"]

#: Key of `click.Context.meta` (shared by a command's context and the group's) where a command may name
#: the flag of a library argument that is not one of its options (``{"n": "--stratified"}``).
FLAG_ALIASES = "geocrop.flag_aliases"


def in_flags(text: str, command: click.Command | None = None, ctx: click.Context | None = None) -> str:
    """A library message in this command's words: every `` `argument` `` becomes its flag (``--end``).

    The flag is an alias the command put in ``ctx.meta[FLAG_ALIASES]``, else the running command's option
    whose Python name is the argument's (``corruption_rate`` -> ``--corruption``), else ``--name`` (another
    verb's argument). ``command`` and ``ctx`` default to the running command; outside one (a Python
    caller after the CLI ran in the same process) the text stays as it is.
    """
    from geocrop.cli.declared import flag_for

    ctx = ctx or click.get_current_context(silent=True)
    if command is None and ctx is not None:
        command = ctx.command
    if command is None:
        return text
    aliases: dict[str, str] = ctx.meta.get(FLAG_ALIASES, {}) if ctx is not None else {}
    found = command

    def flag(name: str) -> str:
        return aliases.get(name) or flag_for(found, name) or as_flag(name)

    return translate_arguments(text, flag)
