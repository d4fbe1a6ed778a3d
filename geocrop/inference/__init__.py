"""The chunked inference engine and the `map_aoi` pipeline."""
