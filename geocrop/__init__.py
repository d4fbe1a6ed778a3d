"""geocrop: crop-type maps from satellite image time series.

Bi-modal (Sentinel-2 + PlanetScope) contrastive pretraining of per-pixel encoders, temporal heads over the
144-step series of frozen features, and a streaming, STAC-backed mapper that writes Cloud-Optimized GeoTIFFs.
Method: Patnala et al. (2024), Front. Remote Sens. 5:1480101.
"""

from geocrop.errors import GeocropError

__version__ = "0.1.0"
__all__ = ["GeocropError", "__version__"]
