"""Drive Debian's QGIS from the test suite, always in a separate process.

The venv must never import `qgis` (QGIS's GDAL and the venv's rasterio GDAL in one process crash), so
every QGIS check runs either `/usr/bin/qgis_process.bin` (Debian's `/usr/bin/qgis_process` wrapper adds
`--noversioncheck` and fails) or the system `/usr/bin/python3` with `qgis.core`, headless
(QT_QPA_PLATFORM=offscreen) in a throwaway profile with the plugin folder on QGIS_PLUGINPATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SOURCE = REPO / "qgis_plugin"
PLUGIN_NAME = "geocrop_qgis"
QGIS_PROCESS = Path("/usr/bin/qgis_process.bin")
SYSTEM_PYTHON = Path("/usr/bin/python3")
FAKE_GEOCROP = Path(__file__).resolve().parent / "fake_geocrop.py"
PYQGIS_DRIVER = Path(__file__).resolve().parent / "pyqgis_driver.py"

#: Variables from the venv/pytest process that must not reach QGIS's Python.
_DROP = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "GDAL_DATA", "PROJ_LIB", "PROJ_DATA", "GDAL_DRIVER_PATH")


@dataclass(frozen=True)
class QgisProfile:
    """A temporary QGIS profile with the plugin installed; `env` runs QGIS headless against it."""

    root: Path
    plugins: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """`qgis_process.bin ARGS` in this profile."""
        return subprocess.run(
            [str(QGIS_PROCESS), *args],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run_json(self, *args: str, timeout: float = 300.0) -> tuple[subprocess.CompletedProcess[str], dict]:
        """`qgis_process.bin --json ARGS`; the parsed JSON object ({} if stdout held none)."""
        completed = self.run("--json", *args, timeout=timeout)
        start = completed.stdout.find("{")
        try:
            payload = json.loads(completed.stdout[start:]) if start >= 0 else {}
        except ValueError:
            payload = {}
        return completed, payload

    def set_setting(self, section: str, key: str, value: str) -> None:
        """Write a QgsSettings value (`section/key`) into the profile's QGIS3.ini, as QGIS would."""
        ini = self.root / "profile" / "profiles" / "default" / "QGIS" / "QGIS3.ini"
        ini.parent.mkdir(parents=True, exist_ok=True)
        text = ini.read_text() if ini.exists() else ""
        ini.write_text(f"{text.rstrip()}\n\n[{section}]\n{key}={value}\n")

    def python(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """`/usr/bin/python3 pyqgis_driver.py ARGS` (qgis.core importable there) in this profile."""
        return subprocess.run(
            [str(SYSTEM_PYTHON), str(PYQGIS_DRIVER), *args],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def qgis_available() -> bool:
    return QGIS_PROCESS.exists() and SYSTEM_PYTHON.exists()


def make_profile(root: Path, *, enable: bool = True, plugin_zip: Path | None = None) -> QgisProfile:
    """Install the plugin in `root/plugins/geocrop_qgis` (a copy of qgis_plugin/, or unpacked from
    `plugin_zip` as QGIS's "Install from ZIP" does), make a profile and (by default) enable the plugin."""
    plugins = root / "plugins"
    if plugin_zip is None:
        shutil.copytree(
            PLUGIN_SOURCE, plugins / PLUGIN_NAME, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    else:
        with zipfile.ZipFile(plugin_zip) as archive:
            archive.extractall(plugins)
    runtime = root / "xdg-runtime"
    runtime.mkdir(mode=0o700, parents=True)
    (root / "profile").mkdir()
    env = {key: value for key, value in os.environ.items() if key not in _DROP}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        XDG_RUNTIME_DIR=str(runtime),
        QGIS_CUSTOM_CONFIG_PATH=str(root / "profile"),
        QGIS_PLUGINPATH=str(plugins),
        HOME=str(root),
        PYTHONDONTWRITEBYTECODE="1",
        TMPDIR=str(root),
    )
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "").split(os.pathsep) if not part.startswith(sys.prefix)
    )
    profile = QgisProfile(root=root, plugins=plugins, env=env)
    if enable:
        completed = profile.run("plugins", "enable", PLUGIN_NAME, timeout=120)
        if completed.returncode != 0:
            raise RuntimeError(f"could not enable the plugin: {completed.stdout}\n{completed.stderr}")
    return profile


def fake_geocrop(
    folder: Path, *, mode: str = "ok", version: str = "0.1.0", record: Path | None = None
) -> Path:
    """An executable `geocrop` stand-in in `folder` running `fake_geocrop.py` with the venv's Python."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "geocrop"
    extra = f" --record '{record}'" if record is not None else ""
    script.write_text(
        "#!/bin/sh\n"
        f"exec '{sys.executable}' '{FAKE_GEOCROP}' --mode {mode} --version-string {version}{extra}"
        ' -- "$@"\n'
    )
    script.chmod(0o755)
    return script


def recorded_calls(record: Path) -> list[dict]:
    """The calls a `fake_geocrop(record=...)` received, oldest first."""
    return [json.loads(path.read_text()) for path in sorted(record.glob("call*.json"))]


def process_gone(pid: int, *, timeout: float = 10.0) -> bool:
    """True once `pid` has exited (a zombie counts as gone) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if not _alive(pid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = next(
            line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:")
        )
    except (OSError, StopIteration):
        return False
    return "Z" not in state


def has_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" in text


def write_fields(path: Path) -> Path:
    """Two square fields (EPSG:32633, 300 m apart) as GeoJSON, named 'north' and 'south'."""

    def square(x: float, y: float) -> list[list[list[float]]]:
        return [[[x, y], [x + 200, y], [x + 200, y + 200], [x, y + 200], [x, y]]]

    features = [
        {
            "type": "Feature",
            "properties": {"name": name},
            "geometry": {"type": "Polygon", "coordinates": ring},
        }
        for name, ring in (("north", square(400_100, 5_819_700)), ("south", square(400_100, 5_819_100)))
    ]
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}}
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": features}))
    return path


def polygons_of(geojson: Path) -> list[list[list[float]]]:
    """The exterior rings of every polygon feature in a GeoJSON FeatureCollection."""
    collection = json.loads(geojson.read_text())
    return [feature["geometry"]["coordinates"][0] for feature in collection["features"]]


def report_of(completed: subprocess.CompletedProcess[str]) -> dict:
    """The JSON line `pyqgis_driver.py` printed; fails with the driver's output if there is none."""
    for line in completed.stdout.splitlines():
        if line.startswith("GEOCROP-REPORT "):
            return json.loads(line.removeprefix("GEOCROP-REPORT "))
    raise AssertionError(f"no report from the PyQGIS driver:\n{completed.stdout}\n{completed.stderr}")


def render_dialog(out: Path, *, width: int = 980, height: int = 1000) -> dict:
    """Render the "Map crops in area" dialog offscreen to the PNG `out` (the picture in docs/qgis.md)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="geocrop-qgis-") as folder:
        profile = make_profile(Path(folder))
        fields = write_fields(Path(folder) / "fields.geojson")
        out.parent.mkdir(parents=True, exist_ok=True)
        return report_of(
            profile.python(
                "screenshot",
                str(out.resolve()),
                "--width",
                str(width),
                "--height",
                str(height),
                "--layer",
                str(fields),
            )
        )


if __name__ == "__main__":
    # `.venv/bin/python tests/qgis/qgis_harness.py docs/img/qgis_map_crops_dialog.png`
    print(render_dialog(Path(sys.argv[1])))
