"""docs/python.md runs: its ```python blocks are executed in order, in one namespace, in an empty folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.filterwarnings("ignore::UserWarning")  # simulated-data notice, filled bands, tiny tables
def test_docs_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{DOC.name} block {number}", "exec"), namespace)
    assert (tmp_path / "crop_map.tif").exists()
    assert (tmp_path / "crops.safetensors").exists() and (tmp_path / "predictions.csv").exists()
    assert (tmp_path / "fields.gpkg").exists() and (tmp_path / "assessment" / "report.md").exists()
