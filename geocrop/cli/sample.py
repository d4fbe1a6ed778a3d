"""``geocrop sample``: reference points to label, drawn from a crop map (stratified or most uncertain)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geocrop.errors import GeocropError, cli_message


def reworded(exc: GeocropError, flags: dict[str, str]) -> GeocropError:
    """``exc`` with its library argument names turned into this command's flags (one line, same type)."""
    if exc.param is None:
        return exc
    return type(exc)(cli_message(exc, flags))


@click.command("sample")
@click.option(
    "--map", "map_path", required=True, type=click.Path(path_type=Path), help="Class COG of `geocrop map`."
)
@click.option(
    "--stratified", type=click.IntRange(min=1), default=None, help="N points, stratified by map class."
)
@click.option(
    "--uncertain", type=click.IntRange(min=1), default=None, help="N most uncertain pixels, spread out."
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Points to label (.gpkg).")
@click.option(
    "--min-per-class", type=click.IntRange(min=2), default=50, show_default=True,
    help="--stratified: the least points any mapped class gets; the rest go in proportion to area.",
)  # fmt: skip
@click.option(
    "--min-distance", type=click.FloatRange(min=0), default=None,
    help="--uncertain: least distance between points, in map units (m); default: ~10 cells per point.",
)  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same points).")
def sample(**kw: Any) -> None:
    """Draw reference points to label in QGIS: fill their `reference` column, then run `geocrop assess`."""
    from geocrop.post.sampling import stratified_sample, uncertain_sample

    if (kw["stratified"] is None) == (kw["uncertain"] is None):
        raise click.UsageError("give either --stratified N or --uncertain N (one of them)")
    flags = {"map": "--map", "out": "--out", "min_per_class": "--min-per-class", "seed": "--seed"}
    flags |= {"min_distance": "--min-distance", "n": "--stratified" if kw["stratified"] else "--uncertain"}
    try:
        if kw["stratified"] is not None:
            result = stratified_sample(
                map=kw["map_path"], n=kw["stratified"], out=kw["out"],
                min_per_class=kw["min_per_class"], seed=kw["seed"],
            )  # fmt: skip
        else:
            result = uncertain_sample(
                map=kw["map_path"], n=kw["uncertain"], out=kw["out"],
                min_distance=kw["min_distance"], seed=kw["seed"],
            )  # fmt: skip
    except GeocropError as exc:
        raise reworded(exc, flags) from exc
    per_class = ", ".join(f"{name} {count}" for name, count in result.per_class.items())
    spacing = f"; at least {result.min_distance:g} apart" if result.min_distance is not None else ""
    click.echo(f"wrote {result.out} ({result.n} points: {per_class}{spacing})")
