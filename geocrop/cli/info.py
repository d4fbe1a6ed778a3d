"""`geocrop info`: versions, devices and default paths, for people and for the QGIS plugin (`--json`)."""

from __future__ import annotations

import json
import platform

import click

from geocrop._version import __version__


def _environment() -> dict[str, object]:
    import rasterio
    import torch

    from geocrop.inference.plan import DEMO_BUNDLE

    return {
        "geocrop": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "gdal": rasterio.__gdal_version__,
        "threads": torch.get_num_threads(),
        "demo_bundle": str(DEMO_BUNDLE) if DEMO_BUNDLE.is_file() else None,
    }


@click.command("info")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (for scripts and the QGIS plugin)."
)
def info(as_json: bool) -> None:
    """Show versions, the compute device and default paths."""
    env = _environment()
    if as_json:
        click.echo(json.dumps(env))
        return
    for key, value in env.items():
        click.echo(f"{key:>8}: {value}")
