"""Season-part pooling (`geocrop.models.season_parts`): the number of parts follows the series length,
each part's mean is the mean of its own dates, ``parts`` 1 is InceptionTime's time mean of before, and
a head spec with parts rebuilds the same module from its saved weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geocrop.errors import BundleError
from geocrop.models.registry import build_head, load_state, state_to_numpy
from geocrop.models.season_parts import part_means, season_parts

SPEC = {"name": "inception", "in_features": 12, "n_classes": 4, "layers": 3, "hidden": 16, "kernel_size": 8}


@pytest.mark.parametrize(("steps", "parts"), [(1, 1), (4, 1), (12, 2), (36, 3), (52, 4), (144, 6), (365, 10)])
def test_the_number_of_parts_grows_with_the_series(steps: int, parts: int) -> None:
    assert season_parts(steps) == parts


def test_no_dates_has_no_parts() -> None:
    with pytest.raises(ValueError, match="at least one date"):
        season_parts(0)


def test_each_part_is_the_mean_of_its_own_dates() -> None:
    h = torch.arange(2 * 3 * 10, dtype=torch.float32).reshape(2, 3, 1, 10)
    out = part_means(h, 3)  # 10 dates: parts of 4, 3 and 3 dates
    assert out.shape == (2, 9)
    want = torch.cat([h[..., a:b].mean(dim=(2, 3)) for a, b in ((0, 4), (4, 7), (7, 10))], dim=1)
    assert torch.equal(out, want)
    assert torch.equal(part_means(h, 1), h.mean(dim=(2, 3)))
    with pytest.raises(ValueError, match="10 dates cannot be read in 11 season parts"):
        part_means(h, 11)


def test_parts_widen_inceptions_classifier_and_one_part_is_the_time_mean() -> None:
    torch.manual_seed(0)
    plain = build_head(SPEC).eval()
    torch.manual_seed(0)
    one = build_head({**SPEC, "parts": 1}).eval()
    four = build_head({**SPEC, "parts": 4})
    assert plain.classifier.in_features == 16 and four.classifier.in_features == 64
    x = torch.randn(3, 20, 12)
    assert torch.equal(plain(x), one(x))  # a bundle without `parts` builds the head of before
    body = {k: v.shape for k, v in plain.state_dict().items() if not k.startswith("classifier.")}
    assert {k: v.shape for k, v in four.state_dict().items() if not k.startswith("classifier.")} == body
    with pytest.raises(BundleError, match="parts >= 1"):
        build_head({**SPEC, "parts": 0})


def test_a_spec_with_parts_rebuilds_the_same_head_from_its_weights() -> None:
    spec = {**SPEC, "parts": 4, "classifier": {"hidden": 8, "dropout": 0.2}}
    torch.manual_seed(1)
    head = build_head(spec)
    head(torch.randn(6, 20, 12))  # move the batch-norm statistics off their initial values
    head.eval()
    again = load_state(build_head(spec), state_to_numpy(head, "head"), "head", found=spec).eval()
    x = torch.randn(3, 20, 12)
    assert np.array_equal(head(x).detach().numpy(), again(x).detach().numpy())
    with pytest.raises(BundleError, match="another architecture"):  # the time mean's classifier differs
        load_state(build_head(SPEC), state_to_numpy(head, "head"), "head", found=SPEC)
