"""The head registry is the one list of head families: the CLI, the API, the training defaults, the QGIS
algorithm and docs/training.md agree with it, and it alone says which option applies to which head."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import get_args

import click
import pytest

from geocrop.api import DeepFamily, HeadFamily, TreeFamily
from geocrop.cli.evaluate import evaluate as evaluate_command
from geocrop.cli.train import train as train_command
from geocrop.errors import InputError
from geocrop.models.head_families import (
    HEAD_FAMILIES,
    HEAD_OPTIONS,
    check_head_options,
    deep_families,
    head_table,
    tree_families,
)
from geocrop.models.registry import registered_heads
from geocrop.training.hparams import DEFAULT_PARAMS, FAMILIES, TREE_FAMILIES

ROOT = Path(__file__).resolve().parents[2]


def _options(command: click.Command) -> dict[str, click.Option]:
    return {p.name: p for p in command.params if isinstance(p, click.Option) and p.name}


def test_every_list_of_heads_is_the_registry() -> None:
    assert get_args(HeadFamily) == tuple(HEAD_FAMILIES)
    assert get_args(DeepFamily) == deep_families() == FAMILIES
    assert get_args(TreeFamily) == tree_families() == TREE_FAMILIES
    assert {f: dict(HEAD_FAMILIES[f].defaults) for f in FAMILIES} == DEFAULT_PARAMS
    assert set(deep_families()) <= set(registered_heads())  # each deep family has a builder ("trees": both)
    train = _options(train_command)
    head = train["head"].type
    assert isinstance(head, click.Choice) and list(head.choices) == list(HEAD_FAMILIES)
    assert [n for n in train if n in HEAD_OPTIONS] == list(HEAD_OPTIONS)
    evaluate = _options(evaluate_command)
    assert evaluate["families"].default == ",".join(deep_families())
    assert evaluate["baselines"].default == ",".join(tree_families())


def _literal(tree: ast.Module, name: str) -> object:
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == name and node.value is not None:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found")


def test_the_qgis_algorithm_offers_the_registry_heads() -> None:
    """The plugin runs in QGIS's Python without geocrop, so it keeps its own copy: read here as text."""
    tree = ast.parse((ROOT / "qgis_plugin" / "train_classifier.py").read_text(encoding="utf-8"))
    heads = _literal(tree, "HEADS")
    assert isinstance(heads, tuple) and heads[0][0] == "auto"  # the default first
    assert dict(heads) == {name: spec.label for name, spec in HEAD_FAMILIES.items()}
    assert set(_literal(tree, "_EPOCH_HEADS")) == set(deep_families())  # type: ignore[call-overload]


def test_the_docs_table_is_the_registry() -> None:
    assert head_table() in (ROOT / "docs" / "training.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("family", "given", "param", "words"),
    [
        ("lstm", {"kernel_size": 5}, "kernel_size", "`kernel_size` does not apply to `head` lstm"),
        ("rf", {"hidden": 8, "epochs": 3}, "hidden", "`hidden`, `epochs` only apply to deep heads"),
        ("gbm", {"lr": 1e-3}, "lr", "`lr` only apply to deep heads, not `head` gbm; drop it"),
        ("auto", {"hidden": 8}, "hidden", "`hidden` does not apply to `head` auto; drop it"),
        ("tempcnn", {"depth": 3}, "head_params", "'depth' is not an option of `head` tempcnn"),
    ],
)
def test_options_that_do_not_apply_are_refused(family: str, given: dict, param: str, words: str) -> None:
    with pytest.raises(InputError, match=words.replace("(", r"\(")) as caught:
        check_head_options(family, given)
    assert caught.value.param == param


def test_options_that_apply_pass() -> None:
    for family, spec in HEAD_FAMILIES.items():
        settings = {"epochs": 2, "batch_size": 16, "lr": 1e-3, "final_lr": 1e-5}
        check_head_options(family, {**spec.defaults, **(settings if spec.kind != "tree" else {})})
        check_head_options(family, {name: None for name in (*HEAD_OPTIONS, *settings)})  # None: not given
    check_head_options("auto", {"candidates": ["tempcnn", "gbm"]})


def test_the_registry_imports_without_torch() -> None:
    """The CLI builds its options from it at import: it must not cost a torch import."""
    code = "import sys, geocrop.models.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
