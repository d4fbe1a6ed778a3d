"""The core every layer above reads: band tables, cloud masks and the temporal grid. Numpy only, no I/O."""
