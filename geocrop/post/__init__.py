"""After the map: field-level results, smoothing, reference sampling and area estimation.

Reads the COGs `geocrop map` writes (`geocrop.io.map_reader`); never imports the pipelines that made them.
"""
