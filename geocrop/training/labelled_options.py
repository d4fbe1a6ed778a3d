"""The options `train` and `evaluate` share, declared once: where the labelled series come from, the split,
and the optimisation settings.

`LabelledOptions` is the one declaration (`geocrop.core.params`): name, type, default, help and check of
each option. `geocrop.api.train` and `geocrop.api.evaluate` take these keywords (a test holds both
signatures equal to its fields) and pass them on as one `LabelledOptions` (`config_args`), which builds the
`LabelSource` and the `TrainConfig` the pipelines read; the CLI's shared options
(`geocrop.cli.label_options`) take their flags, defaults and help from the same fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from geocrop.core.params import (
    Device,
    as_bundle,
    as_floats,
    as_path,
    as_source,
    at_least,
    declared,
    param,
    settle,
)
from geocrop.core.temporal import as_date
from geocrop.data.label_params import labels_param
from geocrop.errors import InputError
from geocrop.io.colour_table import colours_param
from geocrop.models.head_families import HEAD_FAMILIES, HeadName, deep_families, tree_families

if TYPE_CHECKING:  # the API imports this module: no numpy or torch until a config is used
    from geocrop.data.labelled import LabelSource
    from geocrop.training.fit import TrainConfig

__all__ = ["EvaluateOptions", "LabelledOptions", "SplitScheme", "TrainOptions"]

#: Parcel split: 70 % training / 30 % validation, or the paper's 70-21-9.
SplitScheme = Literal["70-30", "70-21-9"]


def _auto_or_at_least(low: int) -> Any:
    def check(value: Any) -> str | None:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= low):
            return None
        return f"is neither 'auto' nor a whole number >= {low}; give auto or a number"

    return check


def _at_least_or_none(low: int) -> Any:
    def check(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and value >= low:
            return None
        return f"is below {low}; give at least {low}, or leave it unset to adapt it to the data"

    return check


def _column(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"`{name}` {value!r} is not a column name; give one", param=name)
    return value


def _date(value: Any, name: str) -> dt.date:
    return as_date(value, name)


def _text(value: Any, name: str) -> str:
    """A path or a ``path:KEY`` text as a string."""
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _device(value: Any) -> str | None:
    if value in ("auto", "cpu", "cuda") or (isinstance(value, str) and value.startswith("cuda:")):
        return None
    return "is not auto, cpu or cuda[:N]; choose one of those"


@dataclass(frozen=True, kw_only=True)
class LabelledOptions:
    """`train`'s and `evaluate`'s shared options, checked and converted on creation (library terms)."""

    labels: Path = labels_param()
    class_column: str = param(help="Column holding the crop type", convert=_column)
    group_column: str | None = param(None, help="Samples table: parcel id column used for splitting")
    id_column: str | None = param(None, help="Parcels: parcel id column (default: row number)")
    s2: str | None = param(
        None, help="S2 source for parcels: STAC API URL, catalog.json or folder", convert=as_source
    )
    start: dt.date | None = param(None, help="Season start (YYYY-MM-DD)", convert=_date)
    end: dt.date | None = param(None, help="Season end (YYYY-MM-DD)", convert=_date)
    steps: int | Literal["auto"] = param(
        "auto",
        help="Temporal grid steps: a number, or auto (a table's own cadence; 144 for imagery)",
        check=_auto_or_at_least(2),
    )
    class_map: str | None = param(
        None,
        help="Code -> name table for coded labels: JSON (file.json:KEY for one of several tables) or CSV",
        convert=_text,
    )
    drop_unmapped: bool = param(False, help="Leave out samples whose code the `class_map` lacks")
    nodata: tuple[float, ...] = param(
        (), help="Table value that means 'no observation' (repeatable; 65535 always is)", convert=as_floats
    )
    scale: float | None = param(
        None,
        help="Multiply table values by this to get reflectance (default: DN tables are detected)",
        check=lambda v: None if isinstance(v, int | float) and v > 0 else "is not positive; give e.g. 0.0001",
    )
    min_parcels: int | Literal["auto"] = param(
        "auto",
        help="Leave out crop types with fewer parcels/samples (a warning names them); 0 keeps all; "
        "auto: 10 (3 where fewer than two classes have 10)",
        check=_auto_or_at_least(0),
    )
    split: SplitScheme = param(
        "70-30", help="Parcel split: 70-30 (train/validation) or 70-21-9 (21 % train, 9 % validation)"
    )
    train_pixels: int = param(5000, help="Train pixels/class", check=_at_least_or_none(1))
    val_pixels: int = param(1000, help="Val pixels/class", check=_at_least_or_none(1))
    epochs: int | None = param(
        None,
        help="Epochs (default: enough for ~1,000 steps, best inner-validation epoch kept; paper: 20)",
        check=_at_least_or_none(1),
    )
    batch_size: int | None = param(
        None,
        help="Batch size (default: ~1/10 of the training series, 16..256; paper: 256)",
        check=_at_least_or_none(2),
    )
    seed: int = param(0, help="Seed of the split, the pixel draw and the weights")
    device: Device = param("auto", help="auto, cpu or cuda", check=_device)
    allow_any_asset_href: bool = param(
        False, help="Read assets wherever the imagery's catalog points (not only beside it)"
    )

    def __post_init__(self) -> None:
        settle(self, season=("start", "end"))

    def source(self) -> LabelSource:
        """Where the labelled series come from, as the loaders read it."""
        from geocrop.data.labelled import LabelSource

        # Every option LabelSource takes has the same name here (`labels` is its `path`).
        shared = {d.name for d in declared(LabelledOptions)}
        names = shared & {f.name for f in dataclasses.fields(LabelSource)}
        return LabelSource(path=self.labels, **{name: getattr(self, name) for name in names})

    def train_config(self, lr: float) -> TrainConfig:
        """The optimisation settings, starting at learning rate ``lr``."""
        from geocrop.training.fit import TrainConfig

        return TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, initial_lr=lr, seed=self.seed, device=self.device
        )


def _bundles(value: Any, name: str) -> tuple[Path, ...]:
    return tuple(as_bundle(v, name) for v in _sequence(value, name))


def _paths(value: Any, name: str) -> tuple[Path, ...]:
    return tuple(as_path(v, name) for v in _sequence(value, name))


def _sequence(value: Any, name: str) -> tuple[Any, ...]:
    """A list of names or paths as a tuple; a lone string is refused (it would read as its letters)."""
    if isinstance(value, str | os.PathLike):
        raise InputError(
            f"`{name}` is a string; give a list such as {_EXAMPLES.get(name, '[...]')}", param=name
        )
    return tuple(value)


_EXAMPLES = {"families": "['lstm', 'transformer']", "baselines": "['rf', 'gbm']"}

#: The tree baselines as `head`'s help names them (``rf: RandomForest, ...``).
_TREES = ", ".join(f"{f}: {HEAD_FAMILIES[f].label}" for f in tree_families())
#: `auto`'s rule, as the help of `head` says it (`geocrop.training.auto`).
AUTO_RULE = (
    "auto: TempCNN, InceptionTime and gbm each fitted once and chosen on a held-out 20 % selection split "
    "of the training parcels; the mean of gbm and one deep head unless a single head wins by more than "
    "2 paired bootstrap standard errors, and never below the majority class"
)


@dataclass(frozen=True, kw_only=True)
class TrainOptions(LabelledOptions):
    """`train`'s options: the shared ones, then the head and where the bundle goes."""

    backbone: Path | None = param(
        None,
        help="Pretrained backbone bundle (none: raw bands). On real labels pretraining has not helped yet; "
        "with 5-10 parcels per class `head` rf won (docs/pretraining.md): measure yours with evaluate's "
        "`labels_per_class`",
        convert=as_bundle,
        kind="bundle",
    )
    head: HeadName = param(
        "auto",
        help=f"Temporal head family ({', '.join(deep_families())}), a tree baseline ({_TREES}), "
        f"or {AUTO_RULE}",
    )
    head_params: Mapping[str, Any] | None = param(
        None,
        help="Options of the head family over its defaults (e.g. {'d_model': 32}; auto: 'candidates')",
        cli=False,
    )
    lr: float | None = param(None, help="Initial learning rate [default: 1e-3]")
    final_lr: float | None = param(None, help="Where the linear schedule ends [default: 1e-5]")
    init: Path | None = param(
        None,
        help="Start the head from a pretrained one (OUT/head.safetensors of pretrain with `mode` temporal, "
        "pretrained on your unlabelled series). On the France table it lifted TempCNN by +0.06 macro-F1 at "
        "5 labelled parcels per class and +0.01-0.04 from 10 to all labels, InceptionTime by +0.05 at 10 "
        "and +0.11 with all labels; with 10 or fewer per class, a fixed `epochs` (40 there) on every "
        "parcel raised TempCNN's gain to +0.04 at 10 and +0.10 at 5. With few labels, pretrain and freeze "
        "it (`freeze_init`): a logistic regression on the frozen TempCNN gained +0.16 at 5, +0.09 at 10 and "
        "+0.06 with all labels, above gradient boosting and a RandomForest on average at every count "
        "(docs/pretraining.md)",
        convert=as_path,
        kind="file",
    )
    freeze_init: bool = param(
        False,
        help="With `init`: keep the pretrained body frozen and fit a logistic regression on its features "
        "(its L2 strength cross-validated on the labelled parcels, calibrated on the out-of-fold "
        "predictions; no epochs, so `epochs` does not apply), or train every weight (fine-tune). Frozen "
        "is the choice with few labels and held up with all of them: on the France table the frozen "
        "TempCNN gained +0.16, +0.09 and +0.06 macro-F1 over raw bands at 5, 10 and all labels per class, "
        "the frozen InceptionTime +0.03 with all labels",
        flag="--freeze-init/--fine-tune-init",
    )
    out: Path = param(help="Bundle .safetensors", convert=as_path, kind="file")
    colors: Path | None = colours_param()  # the bundle carries them to every map made with it


@dataclass(frozen=True, kw_only=True)
class EvaluateOptions(LabelledOptions):
    """`evaluate`'s options: the shared ones, then the methods compared, the folds and the report."""

    bimodal: tuple[Path, ...] = param((), help="Bi-modal backbone bundle (repeat)", convert=_bundles)
    unimodal: tuple[Path, ...] = param((), help="Uni-modal backbone bundle (repeat)", convert=_bundles)
    temporal: tuple[Path, ...] = param(
        (),
        help="Pretrained temporal head (pretrain with `mode` temporal; repeat): its family fine-tuned "
        "from it",
        convert=_paths,
    )
    temporal_frozen: tuple[Path, ...] = param(
        (),
        help="Pretrained temporal head whose body stays frozen (a logistic regression on its features; "
        "repeat)",
        convert=_paths,
    )
    configs: int | None = param(
        None,
        help="default (each family's default configuration) or N configurations drawn per family (paper: 10)",
    )
    folds: int = param(5, help="Grouped folds (1: one split)", check=at_least(1))
    families: tuple[str, ...] | None = param(None, help="Deep head families", convert=_sequence)
    baselines: tuple[str, ...] | None = param(
        None, help="Tree baselines run beside them (none: no trees)", convert=_sequence
    )
    hparam_seed: int = param(0, help="Seed of the configuration draw")
    labels_per_class: tuple[int | Literal["all"] | None, ...] | None = param(
        None,
        help="Labelled parcels per class to train on (e.g. 5,10,20,50,all): learning curves",
    )
    draws: int | tuple[int, ...] = param(
        3, help="Seeded draws of the parcels per count and fold: one number, or one per count (e.g. 3,3,1)"
    )
    report_only: bool = param(
        False, help="Train nothing: report the runs of this setup already in `out` (others may be filling it)"
    )
    simulated: bool = param(False, help="Label the report as made from simulated data")
    lr: float = param(1e-3, help="Learning rate", cli=False)
    out: Path = param(help="Report folder", convert=as_path, kind="folder_out")
