"""How many ``(pixel, timestamp)`` rows a per-pixel encoder runs at once, on the CPU and on CUDA.

Shared by the inference engine (`geocrop.inference.engine.Predictor`) and by feature encoding for training
(`geocrop.training.features.encode`), so both run the backbone in the same, measured batch sizes. Numbers
only: no torch here.
"""

from __future__ import annotations

__all__ = ["CPU_BACKBONE_ROWS", "CPU_BATCH_ROWS", "CUDA_BATCH_ROWS"]

#: (pixel, timestamp) rows per batch on the CPU: 42 pixels x 144 steps. Backbone and head run one such
#: group at a time so its 6 MiB of 256-d features stay in the last-level cache (32 MiB on the development
#: CPU) between the two. Measured there (engine on 32 x 32 px, fraction of matmul peak): 4.5Ki-9Ki rows
#: 67-89 % for all three heads; 128Ki rows (~900 pixels, the earlier setting) 40-56 %.
CPU_BATCH_ROWS = 6 * 1024
#: Backbone sub-batch on the CPU: 2Ki rows x 256 x 4 B = 2 MiB activations stay in L2, which keeps the
#: LayerNorm/ReLU/residual passes between the matmuls cheap. Measured on the 2-core dev machine (ResMLP
#: forward, fraction of matmul peak): 1Ki-2Ki rows 77-80 %, 4Ki 60 %, 16Ki 41 %, 64Ki 25 %.
CPU_BACKBONE_ROWS = 1 << 11
#: On CUDA one launch per 1Mi rows (backbone and head alike), halved on out-of-memory.
CUDA_BATCH_ROWS = 1 << 20
