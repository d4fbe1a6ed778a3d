"""`--head gbm`'s fit on one OpenMP thread and on two: wall and CPU seconds, and whether the model differs.

scikit-learn's gradient boosting builds its histograms in an OpenMP pool (every core by default). On the
France LPIS table (422 series x 52 steps x 12 bands) each parallel region is short, and beside other
work the pool's threads spin while they wait for each other. This fits the booster as `geocrop train
--head gbm` does (`geocrop.training.trees.fit_trees`) under ``threadpool_limits(1)`` and then ``(2)``,
prints wall and CPU seconds of each fit, and compares the two packed models' outputs on the table.
The wait policy is read from the environment when the pool starts (``OMP_WAIT_POLICY=PASSIVE python
bench/gbm_threads.py`` keeps a slow two-thread leg from burning CPU on a busy machine).

    python bench/gbm_threads.py [--threads 1,2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_time import find_realdata, france_series

from geocrop.training.trees import fit_trees


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="OpenMP thread counts, in order (default 1,2)")
    opts = parser.parse_args()
    root = find_realdata()
    if root is None:
        sys.exit("shared/realdata not found (set GEOCROP_REALDATA)")
    series = france_series(root)
    x = np.nan_to_num(series.values.astype(np.float32))
    y = series.labels.astype(np.int64)
    outputs = {}
    print(f"gbm fit on {x.shape[0]} series x {x.shape[1]} steps x {x.shape[2]} bands")
    print("| OpenMP threads | wall s | CPU s | CPU / wall |")
    print("|---|---|---|---|")
    for threads in (int(t) for t in opts.threads.split(",")):
        with threadpool_limits(threads, user_api="openmp"):
            t0, c0 = time.perf_counter(), time.process_time()
            model = fit_trees("gbm", x, y, n_classes=int(y.max()) + 1)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        with torch.inference_mode():
            outputs[threads] = model(torch.from_numpy(x)).numpy()
        print(f"| {threads} | {wall:.1f} | {cpu:.1f} | {cpu / wall:.2f} |", flush=True)
    first, *others = outputs.values()
    same = all(np.array_equal(first, other) for other in others)
    print(f"models' outputs on the table identical across thread counts: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
