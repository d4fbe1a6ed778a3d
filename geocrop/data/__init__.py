"""Numpy/xarray data logic: bands, masks, temporal grid, pairing, splits, the scene simulator. No torch."""
