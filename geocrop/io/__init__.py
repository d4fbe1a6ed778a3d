"""File and network I/O: AOIs, STAC search, cube loading, COG writing, model bundles. Never imports torch."""
