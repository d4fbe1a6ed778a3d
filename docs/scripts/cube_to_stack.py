"""Write a NetCDF Sentinel-2 cube (e.g. ../shared/realdata/worldcereal/worldcereal_preprocessed_inputs.nc) as
the two raster-stack layouts `geocrop.io.raster_stack` reads: ``OUT/stack.tif`` (every band x date) with
its band-date table ``OUT/stack.csv``, and ``OUT/dates/YYYY-MM-DD.tif`` (one file per date, bands named in
their descriptions). docs/architecture.md ("Raster stacks") maps the Belgian cube from both and from the
cube itself with the same bundle and compares the maps.

    python docs/scripts/cube_to_stack.py CUBE.nc OUT
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from affine import Affine


def main(cube: str, out: str) -> None:
    ds = xr.open_dataset(cube)
    names = [str(v) for v in ds.data_vars if str(v).startswith("S2-L2A-")]
    xs, ys = ds.x.values, ds.y.values
    dx, dy = float(xs[1] - xs[0]), float(ys[1] - ys[0])
    profile = {
        "driver": "GTiff", "width": xs.size, "height": ys.size, "dtype": "uint16", "nodata": 65535,
        "crs": ds["crs"].attrs["crs_wkt"], "transform": Affine(dx, 0, xs[0] - dx / 2, 0, dy, ys[0] - dy / 2),
    }  # fmt: skip
    folder = Path(out)
    (folder / "dates").mkdir(parents=True, exist_ok=True)
    days = [str(t)[:10] for t in ds.t.values]
    rows = ["band,date,name"]
    with rasterio.open(folder / "stack.tif", "w", count=len(days) * len(names), **profile) as stack:
        for t, day in enumerate(days):
            with rasterio.open(folder / "dates" / f"{day}.tif", "w", count=len(names), **profile) as one:
                for b, name in enumerate(names):
                    layer = ds[name].isel(t=t).values.astype(np.uint16)
                    index = t * len(names) + b + 1
                    stack.write(layer, index)
                    one.write(layer, b + 1)
                    one.set_band_description(b + 1, name.removeprefix("S2-L2A-"))
                    rows.append(f"{index},{day},{name.removeprefix('S2-L2A-')}")
    (folder / "stack.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    shape = f"{len(rows) - 1} bands ({len(days)} dates x {len(names)} bands)"
    print(f"{folder / 'stack.tif'}: {shape}; {folder / 'dates'}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
