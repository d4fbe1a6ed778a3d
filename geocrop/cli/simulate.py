"""``geocrop simulate``: write the simulated sample area (COGs + static STAC catalog + labels + AOI).

Parses flags into a `SimulationConfig` and calls `geocrop.sim.sample_area.write_sample_area`. The data
is simulated (a test instrument), and the command says so.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("simulate")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same data).")
@click.option(
    "--size", type=click.IntRange(8, 4096), default=96, show_default=True, help="Width and height, S2 pixels."
)
@click.option("--year", type=click.IntRange(1900, 2200), default=2021, show_default=True)
@click.option("--tiny", is_flag=True, hidden=True, help="The 24x24-pixel test config (ignores --size).")
def simulate(out: Path, seed: int, size: int, year: int, tiny: bool) -> None:
    """Write a SIMULATED Sentinel-2 + PlanetScope sample area (a test instrument, not real data).

    Reuses OUT when it already holds a complete area made with the same options.
    """
    from geocrop.sim.sample_area import write_sample_area
    from geocrop.sim.scene import SimulationConfig

    if tiny:
        config = SimulationConfig.tiny(seed=seed)
    else:
        config = SimulationConfig(seed=seed, width=size, height=size, year=year)
    area = write_sample_area(out, config)
    verb = "reused" if area.reused else f"written in {area.seconds:.1f} s"
    click.echo(
        f"simulated sample area {verb}: {area.n_s2_items} Sentinel-2 and {area.n_planet_items} PlanetScope "
        f"scenes, {config.width}x{config.height} px at 10 m (SIMULATED data)"
    )
    click.echo(f"  catalog: {area.catalog}")
    click.echo(f"  labels:  {area.labels}")
    click.echo(f"  AOI:     {area.field}")
