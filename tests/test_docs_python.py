"""docs/python.md runs: its ```python blocks are executed in order, in one namespace, in an empty folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"

#: Side of the simulated sample area the fast run maps: 48 x 48 px, a quarter of the default 96 x 96 (the
#: map of block 1 was 24 of the page's 46 CPU seconds). The slow run maps the area as written.
FAST_SIDE = 48


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.filterwarnings("ignore::UserWarning")  # simulated-data notice, filled bands, tiny tables
@pytest.mark.parametrize(
    "side",
    [pytest.param(FAST_SIDE, id="small-area"), pytest.param(None, id="as-written", marks=pytest.mark.slow)],
)
def test_docs_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int | None) -> None:
    if side is not None:  # the page's code unchanged; only the default area it simulates is smaller
        from geocrop.sim import sample_area

        small = sample_area.SimulationConfig(width=side, height=side)
        write = sample_area.write_sample_area

        def write_small(out_dir: Any, config: Any = None, **kwargs: Any) -> Any:
            return write(out_dir, config or small, **kwargs)

        monkeypatch.setattr(sample_area, "write_sample_area", write_small)
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{DOC.name} block {number}", "exec"), namespace)
    assert (tmp_path / "crop_map.tif").exists()
    assert (tmp_path / "crops.safetensors").exists() and (tmp_path / "predictions.csv").exists()
    assert (tmp_path / "fields.gpkg").exists() and (tmp_path / "assessment" / "report.md").exists()
    if side is not None:
        import rasterio

        with rasterio.open(tmp_path / "crop_map.tif") as src:
            assert src.width <= side + 2 and src.height <= side + 2  # the smaller area was the one mapped
