"""The scene simulator: a **test instrument** (simulated parcels, sky, sensors), never evidence on crops.

`simulate` makes co-registered Sentinel-2 and PlanetScope scenes in memory; `write_sample_area` writes them
as COGs plus a static STAC catalog, the sample area the demo, the tests and the benches map. Nothing below
this package imports it.
"""

from geocrop.sim.phenology import CROP_COLOURS, CROP_TYPES
from geocrop.sim.sample_area import SampleArea, write_sample_area
from geocrop.sim.scene import SimulatedScenes, SimulationConfig, simulate

__all__ = [
    "CROP_COLOURS",
    "CROP_TYPES",
    "SampleArea",
    "SimulatedScenes",
    "SimulationConfig",
    "simulate",
    "write_sample_area",
]
