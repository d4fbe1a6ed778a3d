"""A stand-in for the `geocrop` executable that speaks the `--progress json` protocol (test instrument).

Used for the plumbing tests (progress, errors, cancel, version check) so they run in seconds; the
end-to-end test runs the real `geocrop map`. Behaviour is chosen by flags the wrapper script bakes in
before the real arguments:

    fake_geocrop.py --mode ok|slow|error|crash [--version-string 0.1.0] [--record DIR] -- ARGS...

`ok` warns once, then writes a 4x4 GeoTIFF with a colour table and a `.qml` legend beside it; `slow`
leaves a resume journal, a temporary folder and a style like an interrupted run, starts a child process
and then waits silently (for cancellation tests); `error` prints a
`{"event": "error"}` line and exits 2; `param-error` one in library terms (`param`, `text` naming
`` `out` ``), as geocrop reports an error about one argument; `crash` prints to stderr and exits 1.
With `--record DIR` the arguments, the environment and the process ids are written there as JSON.
`train` prints epoch lines and writes a placeholder bundle (or, in `error` mode, fails like geocrop
does without JSON progress).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CLASSES = [(1, "winter wheat", "#e6c229"), (2, "maize", "#3a8d2f"), (3, "sugar beet", "#c9743a")]


def _emit(event: dict[str, object]) -> None:
    print(json.dumps(event), flush=True)


def _qml(classes: list[tuple[int, str, str]]) -> str:
    entries = "\n".join(
        f'        <paletteEntry value="{value}" label="{name}" color="{color}" alpha="255"/>'
        for value, name, color in classes
    )
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="AllStyleCategories">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>
  </pipe>
</qgis>
"""


def _write_map(out: Path) -> None:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    data = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 2, 2], [3, 3, 255, 255]], dtype="uint8")
    profile = {
        "driver": "GTiff",
        "width": 4,
        "height": 4,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": from_origin(399_960.0, 5_820_000.0, 10.0, 10.0),
        "nodata": 255,
    }
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data, 1)
        dst.write_colormap(1, {value: _rgb(color) for value, _, color in CLASSES})
    out.with_suffix(".qml").write_text(_qml(CLASSES), encoding="utf-8")


def _rgb(color: str) -> tuple[int, int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16), 255


def _map(args: list[str], mode: str, record: Path | None) -> int:
    parser = argparse.ArgumentParser(prog="geocrop map")
    parser.add_argument("--aoi")
    parser.add_argument("--bbox")
    parser.add_argument("--stac", default="https://earth-search.aws.element84.com/v1")  # geocrop's default
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", required=True)
    parser.add_argument("--model")
    parser.add_argument("--planet")
    parser.add_argument("--max-cloud", type=float)
    parser.add_argument("--probabilities", action="store_true")
    parser.add_argument("--out", required=True)
    parser.add_argument("--html")
    parser.add_argument("--progress", choices=["json", "bar", "none"])
    parser.add_argument("--yes", action="store_true")
    options = parser.parse_args(args)
    out = Path(options.out)
    if record is not None and options.aoi:
        (record / "aoi.geojson").write_text(Path(options.aoi).read_text(encoding="utf-8"), encoding="utf-8")

    if mode == "error":
        _emit({"event": "progress", "fraction": 0.1, "message": "Searching the STAC source"})
        message = f"no Sentinel-2 scenes in {options.stac} between the dates"
        _emit({"event": "error", "message": message, "param": None, "text": message})
        return 2
    if mode == "param-error":  # an error in library terms, as `geocrop map` reports a bad --out
        text = f"`out` {out}: cannot write there (read-only folder); choose a folder you can write to"
        message = text.replace("`out`", "--out")
        _emit({"event": "error", "message": message, "param": "out", "text": text})
        print(f"geocrop: error: {message}", file=sys.stderr, flush=True)
        return 2
    if mode == "crash":
        print("something unexpected happened in the stand-in", file=sys.stderr, flush=True)
        return 1
    if mode == "slow":
        # Like `geocrop map` interrupted: a resume journal and a temporary folder stay behind.
        journal = out.with_name(f"{out.name}.parts")
        journal.mkdir()
        (journal / "tile-0-0.npz").write_bytes(b"tile")
        temp = out.with_name(f".{out.name}.1a2b3c4d.partial")
        temp.mkdir()
        (temp / "class.tif").write_bytes(b"partial")
        out.with_suffix(".qml").write_text("<qgis/>")
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        if record is not None:
            (record / "child.pid").write_text(str(child.pid))
        _emit({"event": "progress", "fraction": 0.05, "message": "Loading scenes"})
        time.sleep(600)  # silent, like a long chunk of inference: cancel must work meanwhile
        return 0

    print("geocrop: warning: 3 of 12 scenes are cloudier than --max-cloud", file=sys.stderr, flush=True)
    text = "3 of 12 scenes are cloudier than `max_cloud`"  # geocrop's warning event: flags and library terms
    _emit({"event": "warning", "message": "3 of 12 scenes are cloudier than --max-cloud", "text": text})
    for step in range(1, 5):
        _emit({"event": "progress", "fraction": step / 5, "message": f"Mapping block {step} of 4"})
        time.sleep(0.05)
    _write_map(out)
    outputs = {"cog": str(out), "qml": str(out.with_suffix(".qml"))}
    if options.html:
        Path(options.html).write_text("<html><body>crop map</body></html>", encoding="utf-8")
        outputs["html"] = options.html
    print("INFO geocrop.inference: wrote the crop map", file=sys.stderr, flush=True)
    _emit({"event": "done", "outputs": outputs})
    return 0


def _train(args: list[str], mode: str, record: Path | None) -> int:
    """Like `geocrop train --progress json`: stage and epoch progress events, then ``done``."""
    parser = argparse.ArgumentParser(prog="geocrop train")
    for flag in ("--labels", "--class-column", "--id-column", "--s2", "--start", "--end", "--head", "--out"):
        parser.add_argument(flag, required=flag in ("--labels", "--class-column", "--head", "--out"))
    for flag in ("--epochs", "--train-pixels", "--steps"):
        parser.add_argument(flag, type=int)
    parser.add_argument("--backbone")
    parser.add_argument("--progress", choices=["rich", "json", "none"], default="rich")
    options = parser.parse_args(args)
    if record is not None:
        (record / "labels.geojson").write_text(
            Path(options.labels).read_text(encoding="utf-8"), encoding="utf-8"
        )
    if mode == "error":
        print(f"geocrop: error: labels {options.labels}: only 1 crop type; give at least 2", file=sys.stderr)
        return 2
    _emit({"event": "progress", "fraction": 0.0, "message": "reading the labelled pixels' series"})
    epochs = options.epochs or 3  # like geocrop: without --epochs the head picks its own number
    for epoch in range(1, epochs + 1):
        line = f"epoch {epoch}/{epochs}: train loss 0.5000, val loss 0.6000, val accuracy 70.00%"
        _emit({"event": "progress", "fraction": 0.1 + 0.9 * epoch / epochs, "message": line})
        time.sleep(0.02)
    Path(options.out).write_bytes(b"fake bundle")
    _emit({"event": "done", "outputs": {"bundle": options.out}})
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="ok", choices=["ok", "slow", "error", "param-error", "crash"])
    parser.add_argument("--version-string", default="0.1.0")
    parser.add_argument("--record", type=Path)
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    rest = options.rest[1:] if options.rest[:1] == ["--"] else options.rest
    record: Path | None = options.record
    if record is not None:
        record.mkdir(parents=True, exist_ok=True)
        (record / f"call{time.monotonic_ns()}.json").write_text(
            json.dumps({"argv": rest, "env": dict(os.environ), "pid": os.getpid()})
        )
    if rest[:1] == ["--version"]:
        print(f"geocrop, version {options.version_string}")
        return 0
    if rest[:1] == ["map"]:
        return _map(rest[1:], options.mode, record)
    if rest[:1] == ["train"]:
        return _train(rest[1:], options.mode, record)
    # like geocrop's group: an older geocrop meets a command it does not have yet
    print(
        f"geocrop: error: No such command {rest[0]!r}; run `geocrop --help` for the list of commands",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
