"""The demo: the simulated sample area, the demo model bundle, and a crop map of `sample_aoi/field.geojson`.

Everything here is built from **simulated** data (`geocrop.sim.scene`): it shows the tool working end to
end, not that the method works. `build_demo_bundle` is the documented, reproducible recipe of the shipped
demo bundle (`geocrop demo --rebuild-model`): bi-modal pretraining on the sample area's Sentinel-2 +
PlanetScope pairs, then a Transformer head trained on its labelled parcels over the frozen encoder. The
bundle's provenance says ``"data": "simulated"`` (`geocrop.train` reads the simulator's marks), so
`geocrop map` refuses it over real scenes unless asked explicitly and labels every map it makes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geocrop.inference.plan import DEMO_BUNDLE

SEASON = (dt.date(2021, 1, 1), dt.date(2021, 12, 31))
#: Settings of the shipped demo bundle: small enough to rebuild on a laptop CPU in a few minutes.
DEMO_PRETRAIN_EPOCHS = 4
DEMO_PIXELS_PER_DATE = 1500
DEMO_HEAD = {"d_model": 64, "heads": 4, "layers": 2}
DEMO_HEAD_EPOCHS = 15
DEMO_PIXELS_PER_CLASS = (300, 100)

Report = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    cog: Path
    html: Path
    bundle: Path
    seconds: float


def build_demo_bundle(*, sample_dir: Path, work_dir: Path, out: Path, report: Report) -> Path:
    """Pretrain (bi-modal, Eq. 1), then train a Transformer head on the sample area; write bundle ``out``."""
    from geocrop.data.labelled import LabelSource
    from geocrop.sim.sample_area import write_sample_area
    from geocrop.training.hparams import HeadConfig
    from geocrop.training.pretrain import PretrainConfig, pretrain
    from geocrop.training.train import TrainConfig, TrainJob, train_model

    sample = write_sample_area(sample_dir)
    catalog = str(sample.catalog)
    report(f"pretraining the bi-modal encoder ({DEMO_PRETRAIN_EPOCHS} epochs, simulated data)")
    encoder = pretrain(
        PretrainConfig(
            out=work_dir / "pretrain",
            s2=catalog,
            planet=catalog,
            fields=str(sample.labels),
            epochs=DEMO_PRETRAIN_EPOCHS,
            pixels_per_date=DEMO_PIXELS_PER_DATE,
            seed=0,
        ),
        progress=True,
    )
    report("training the Transformer head on the labelled parcels")
    n_train, n_val = DEMO_PIXELS_PER_CLASS
    train_model(
        TrainJob(
            source=LabelSource(
                path=sample.labels,
                class_column="crop",
                id_column="parcel_id",
                s2=catalog,
                start=SEASON[0],
                end=SEASON[1],
            ),
            out=out,
            head=HeadConfig("transformer", DEMO_HEAD),
            backbone=encoder.bundle,
            config=TrainConfig(epochs=DEMO_HEAD_EPOCHS, seed=0),
            n_train=n_train,
            n_val=n_val,
        )
    )
    return stamp_demo_provenance(out)


def stamp_demo_provenance(bundle: Path, *, config: Any = None) -> Path:
    """Rewrite ``bundle``'s metadata with the simulated-data provenance of the sample area (tensors kept).

    `build_demo_bundle` records it already (through `geocrop.training.train.train_model`); this brings a
    bundle written before provenance existed up to date, and drops local paths from its metadata.
    """
    from pyproj import Transformer

    from geocrop.io.bundle import load_bundle, save_bundle
    from geocrop.sim.scene import SimulationConfig

    cfg = config or SimulationConfig()
    loaded = load_bundle(bundle)
    meta = dict(loaded.metadata)
    training = dict(meta.get("training") or {})
    if training.get("labels"):
        training["labels"] = Path(str(training["labels"])).name
    meta["training"] = training
    minx, miny, maxx, maxy = cfg.bounds
    to_lonlat = Transformer.from_crs(cfg.epsg, 4326, always_xy=True)
    region = [round(v, 6) for v in to_lonlat.transform_bounds(minx, miny, maxx, maxy)]
    accuracy = training.get("val_accuracy")
    meta["provenance"] = {
        "data": "simulated",
        "labels": training.get("labels") or "labels.geojson",
        "season": [SEASON[0].isoformat(), SEASON[1].isoformat()],
        "region": region,
        "classes": [c["name"] for c in meta.get("classes", [])],
        "accuracy": None
        if accuracy is None
        else {
            "metric": "overall_accuracy",
            "value": round(float(accuracy), 4),
            "protocol": "pixels of held-out validation parcels (split by parcel), after the last epoch; "
            "simulated parcels, so it says nothing about real fields",
        },
    }
    return save_bundle(bundle, loaded.tensors, meta)


def run_demo(
    *, root: Path = Path("sample_aoi"), rebuild_model: bool = False, report: Report = print
) -> DemoResult:
    """Write the sample area if missing, build the demo bundle if asked or absent, and map the AOI."""
    import time

    from geocrop.inference.mapping import map_aoi
    from geocrop.inference.plan import MapConfig
    from geocrop.sim.sample_area import write_sample_area

    started = time.perf_counter()
    report("writing the simulated sample area (first run only)")
    sample = write_sample_area(root / "data")
    bundle = DEMO_BUNDLE
    if rebuild_model or not bundle.is_file():
        bundle = build_demo_bundle(
            sample_dir=root / "data", work_dir=root / "data" / "demo-work", out=bundle, report=report
        )
    out_dir = root / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    report("mapping sample_aoi/field.geojson")
    result = map_aoi(
        MapConfig(
            aoi=root / "field.geojson",
            start=SEASON[0],
            end=SEASON[1],
            out=out_dir / "crop_map.tif",
            model=bundle,
            stac=str(sample.catalog),
            html=out_dir / "crop_map.html",
        )
    )
    assert result.html is not None
    return DemoResult(result.cog, result.html, bundle, time.perf_counter() - started)
