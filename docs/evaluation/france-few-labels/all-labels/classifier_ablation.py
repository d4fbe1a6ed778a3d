"""Which classifier should a frozen pretrained body train? Variants of the classifier, 5 grouped folds.

Fits the frozen head (`TrainConfig.freeze_init`) of one pretrained head with all labels of each fold as
`geocrop evaluate --temporal-frozen` does (`fit_any_head`: inner 20 % selection split, early stopping,
calibrated probabilities), with the classifier layer replaced before training:

- ``linear``: the family's linear layer (geocrop's frozen classifier before `frozen_hidden`);
- ``bn``: batch norm, then the linear layer; ``mlp``: Linear(256), ReLU, Dropout 0.2, Linear;
- ``bnmlp``: batch norm, then the MLP (what `geocrop.models.mlp_classifier.MLPClassifier` became);
- ``seg4``, ``seg8`` (per-date bodies: InceptionTime, Transformer, Bi-LSTM): the body's per-date features
  (`geocrop.models.masked_series.step_features`) averaged over 4 or 8 equal parts of the season instead
  of the whole of it, then ``bnmlp``: the classifier learns *when*, not only what;

each optionally ``:lr1e-2`` (initial learning rate), ``:noaug`` (no shift-and-noise augmentation),
joined by ``+``. Prints macro-F1 mean ± std and per fold, and the kept epochs.

    python docs/evaluation/france-few-labels/all-labels/classifier_ablation.py tempcnn-resample \\
        linear,linear:lr1e-2,bn,mlp,bnmlp
"""

from __future__ import annotations

import sys
import time
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

import geocrop.training.fit as fit_module
from geocrop.models.device import resolve_device
from geocrop.models.masked_series import step_features
from geocrop.training.any_head import cached_features, fit_any_head
from geocrop.training.fit import TrainConfig
from geocrop.training.head_init import init_backbone, read_init
from geocrop.training.hparams import default_config
from geocrop.training.metrics import macro_f1

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diagnose_frozen import HEADS, series

PLAIN_BUILD = fit_module.build_head


def _segment_forward(family: str, parts: int):  # logits from per-date features pooled by season part
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = step_features(family, self, x)  # (B, T, D)
        chunks = torch.tensor_split(steps, parts, dim=1)
        return self.classifier(torch.cat([c.mean(dim=1) for c in chunks], dim=1))

    return forward


def builder(kind: str):  # the registry's build_head, with the classifier replaced
    def build(spec):
        head = PLAIN_BUILD(spec)
        d, k = head.classifier.in_features, head.classifier.out_features
        if kind == "bn":
            head.classifier = nn.Sequential(nn.BatchNorm1d(d), nn.Linear(d, k))
        elif kind in ("mlp", "bnmlp"):
            first = [nn.BatchNorm1d(d)] if kind == "bnmlp" else []
            mlp = [nn.Linear(d, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, k)]
            head.classifier = nn.Sequential(*first, *mlp)
        elif kind.startswith("seg"):
            parts = int(kind[3:])
            mlp = [nn.Linear(d * parts, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, k)]
            head.classifier = nn.Sequential(nn.BatchNorm1d(d * parts), *mlp)
            head.forward = types.MethodType(_segment_forward(str(spec["name"]), parts), head)
        return head  # "linear": the family's own layer

    return build


def main() -> None:
    torch.set_num_threads(1)
    name, variants = sys.argv[1], sys.argv[2].split(",")
    data, splits = series()
    path = HEADS / name / "head.safetensors"
    pre = read_init(path)
    backbone = init_backbone(pre)
    head_config = default_config(pre.family)
    head_config = replace(head_config, params={**head_config.params, **pre.head_params()})
    for variant in variants:
        kind, _, options = variant.partition(":")
        config = TrainConfig(init=str(path), freeze_init=True, frozen_hidden=0)  # replaced below
        for option in filter(None, options.split("+")):
            config = replace(config, augment=False) if option == "noaug" else config
            config = replace(config, initial_lr=float(option[2:])) if option.startswith("lr") else config
        fit_module.build_head = builder(kind)
        scores, epochs, t0 = [], [], time.time()
        for train_idx, val_idx in splits:
            features = cached_features(
                data, backbone, np.concatenate([train_idx, val_idx]), resolve_device("cpu")
            )
            fitted = fit_any_head(head_config, data, features, train_idx, val_idx, config=config)
            pred = fitted.val_proba.argmax(1)
            scores.append(macro_f1(data.labels[val_idx], pred, len(data.class_names)))
            epochs.append(fitted.best_epoch)
        folds = " ".join(f"{s:.3f}" for s in scores)
        mean, std = np.mean(scores), np.std(scores)
        print(
            f"{name} {variant} {mean:.3f} ± {std:.3f} {folds} epochs {epochs} {time.time() - t0:.0f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
