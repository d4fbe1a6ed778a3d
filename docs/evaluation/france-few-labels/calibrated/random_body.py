"""The control for the frozen-body result: the same head file with its pretrained weights replaced by a
fresh random initialisation, so that a frozen run on it measures what the logistic regression gets from
an untrained body of the same shape.

    python docs/evaluation/france-few-labels/calibrated/random_body.py \
        runs/temporal/tempcnn-resample/head.safetensors runs/random-control/head.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from geocrop.models.registry import build_head
from geocrop.training.head_init import read_pretrained_head

PREFIX = "head."


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pretrained", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()
    pre = read_pretrained_head(args.pretrained)
    with safe_open(str(args.pretrained), "pt") as f:
        metadata = f.metadata()
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    torch.manual_seed(args.seed)
    fresh = build_head({**pre.head, "n_classes": 2}).state_dict()  # the classifier is not in the file
    random = {}
    for key, value in tensors.items():
        new = fresh[key.removeprefix(PREFIX)]
        if new.shape != value.shape:
            raise SystemExit(f"{key}: {tuple(new.shape)} != {tuple(value.shape)}")
        random[key] = new.clone().to(value.dtype)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(random, str(args.out), metadata=metadata)
    print(f"wrote {args.out}: {len(random)} tensors, every one freshly initialised (seed {args.seed})")


if __name__ == "__main__":
    main()
