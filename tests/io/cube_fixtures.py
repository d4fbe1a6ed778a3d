"""Small generated NetCDF cubes and samples tables in the layouts `geocrop.io.cube_file` and
`geocrop.data.table_pairs` accept (WorldCereal's: int16 reflectance x 1e4, -1 nodata, S1 as uint16)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

WKT_31N = "EPSG:32631"
#: Upper-left corner (UTM 31N) of the generated cubes: in Belgium, like the real WorldCereal cube.
CUBE_ORIGIN = (664000.0, 5612120.0)


def write_cube(
    path: Path,
    *,
    size: int = 12,
    months: int = 4,
    bands: Sequence[str] = ("B02", "B03", "B04", "B05", "B08", "B11", "B12"),
    prefix: str = "S2-L2A-",
    time_dim: str = "t",
    s1: bool = True,
    origin: tuple[float, float] = CUBE_ORIGIN,
    seed: int = 0,
) -> Path:
    """A (time, y, x) NetCDF cube, one int16 variable per band (reflectance x 1e4, -1 nodata at [0, 0, 0])."""
    rng = np.random.default_rng(seed)
    xs = origin[0] + 5.0 + 10.0 * np.arange(size)
    ys = origin[1] - 5.0 - 10.0 * np.arange(size)
    times = pd.date_range("2021-03-01", periods=months, freq="MS").to_numpy()
    coords = {time_dim: times, "y": ys, "x": xs}
    dims = (time_dim, "y", "x")
    data = {}
    for k, band in enumerate(bands):
        values = (500 + 300 * k + rng.integers(0, 200, (months, size, size))).astype(np.int16)
        values[0, 0, 0] = -1
        data[f"{prefix}{band}"] = xr.Variable(dims, values, {"grid_mapping": "crs"})
    if s1:
        for band, db in (("VV", -10.0), ("VH", -17.0)):
            dn = 10 ** ((db + rng.normal(0, 1, (months, size, size)) + 83.0) / 20.0)
            data[f"S1-SIGMA0-{band}"] = xr.Variable(dims, dn.astype(np.uint16), {"grid_mapping": "crs"})
    from pyproj import CRS

    data["crs"] = xr.Variable((), np.int8(0), {"crs_wkt": CRS(WKT_31N).to_wkt()})
    ds = xr.Dataset(data, coords=coords)
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def write_long_table(
    path: Path, *, samples: int = 40, dates: int = 8, s1: bool = True, seed: int = 0
) -> Path:
    """A WorldCereal-layout long table (sample_id, timestamp, S2-L2A-Bxx uint16, S1-SIGMA0-VV/VH uint16)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(samples):
        base = rng.integers(300, 3000, 10)
        for t in range(dates):
            row: dict[str, object] = {
                "sample_id": f"s{i:03d}",
                "timestamp": pd.Timestamp("2021-03-01") + pd.Timedelta(days=10 * t),
                "ewoc_code": 1101000000 + i % 3,
            }
            for k, band in enumerate(("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")):
                row[f"S2-L2A-{band}"] = (
                    65535 if (band == "B8A" or (t + i) % 5 == 0) else int(base[k] + 20 * t)
                )
            if s1:
                row["S1-SIGMA0-VV"] = int(10 ** ((-10.0 + 0.1 * t + 83.0) / 20.0)) if t != 3 else 65535
                row["S1-SIGMA0-VH"] = int(10 ** ((-17.0 + 0.1 * t + 83.0) / 20.0))
            rows.append(row)
    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path
