"""`geocrop demo`: map the simulated sample area with the demo bundle (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("sample_aoi"),
    show_default=True,
    help="Folder with field.geojson; the simulated data goes to ROOT/data, the map to ROOT/out.",
)
@click.option("--rebuild-model", is_flag=True, help="Retrain the demo bundle from the sample area first.")
def demo(root: Path, rebuild_model: bool) -> None:
    """Map sample_aoi/field.geojson (simulated data) and print where the COG and web page are."""
    from geocrop.demo import run_demo

    result = run_demo(root=root, rebuild_model=rebuild_model, report=lambda msg: click.echo(f"- {msg}"))
    click.echo(f"crop map (COG): {result.cog}")
    click.echo(f"web page:       {result.html}")
    click.echo(f"model bundle:   {result.bundle}")
    click.echo(
        f"done in {result.seconds:.0f} s. The sample area is simulated: a demo, not an accuracy claim."
    )
