"""Stream a crop map into two Cloud-Optimized GeoTIFFs, block by block, and publish them atomically.

Layout (all uint8, nodata 255; see docs/outputs.md):

* ``<map>.tif``, the **class COG**: one band ``class`` (the class value of each pixel) stored as a
  paletted image: the colour table is inside the GeoTIFF, so QGIS, GDAL and any GeoTIFF viewer draw the
  crop colours from the file alone. The class names are inside too, as band metadata ``CLASS_<value>=<name>``
  and the dataset tag ``GEOCROP_CLASSES`` (JSON: value, name, colour). Overviews are resampled with
  **mode** (an average of class values is meaningless).
* ``<map>_confidence.tif``, the **confidence COG**: band 1 ``confidence`` (winning class probability,
  percent), band 2 ``uncertainty`` (normalised entropy of the class probabilities, percent: 0 = one class
  certain, 100 = all equally likely; 255 when the probabilities were not given), bands 3.. optional
  ``probability_<name>`` (percent). Overviews **average**.
* ``<map>.tif.aux.xml``: category names and a thematic raster attribute table for the class band. GeoTIFF
  has no place for category names (GDAL keeps them in this PAM sidecar whatever the layout; checked with
  PAM disabled), so legends that list names read it; without it the map still opens paletted with its
  colours, and the names stay in the band metadata, the ``.qml`` style and the STAC item.

Why two files: a GeoTIFF holds a colour table only in a single-band (photometric palette) image, and GDAL's
COG driver applies one overview resampling to every band; a class band needs both a palette and mode
overviews, the value bands average overviews. Blocks are streamed into two uncompressed tiled GeoTIFFs in a
private temporary folder beside the output, overviews are built on each with its own resampling, and the
COG driver copies each with ``OVERVIEWS=FORCE_USE_EXISTING``. Nothing holds the whole raster.

Atomicity: every file is made in the temporary folder and moved into place with ``os.replace``; on any
error, or if the ``with`` block raises, the folder is removed and the output paths are left untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.errors
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.io import DatasetWriter
from rasterio.windows import Window

from geocrop.errors import InputError, OutputError
from geocrop.io.classes import NODATA, ClassInfo, check_classes

__all__ = [
    "NODATA",
    "ClassInfo",
    "CogWriter",
    "check_writable",
    "confidence_path",
    "normalised_entropy",
    "overview_factors",
    "sidecar_path",
]


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Fail fast with `OutputError` if ``path`` cannot be written; call it before any compute.

    Checks that ``path`` is not a folder, that its parent folder exists, and that a file can be created
    there (by creating and removing a probe file). Returns the absolute path.
    """
    out = Path(path).expanduser().absolute()
    if out.is_dir():
        raise OutputError(f"output {out} is a folder; give a file name such as {out / 'cropmap.tif'}")
    parent = out.parent
    if not parent.is_dir():
        raise OutputError(f"output {out}: folder {parent} does not exist; create it or choose another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"output {out}: cannot write in {parent} ({exc.strerror or exc}); choose a writable folder"
        ) from exc
    return out


def sidecar_path(cog: str | os.PathLike[str]) -> Path:
    """Where GDAL looks for the PAM sidecar (category names, RAT) of ``cog``."""
    return Path(f"{os.fspath(cog)}.aux.xml")


def confidence_path(cog: str | os.PathLike[str]) -> Path:
    """The confidence/uncertainty/probability COG written beside the class COG ``cog``."""
    path = Path(cog)
    return path.with_name(f"{path.stem}_confidence{path.suffix or '.tif'}")


def normalised_entropy(probs: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """(C, h, w) probabilities (float [0, 1] or uint8 percent, 255/NaN nodata) -> (h, w) uint8 percent.

    ``100 * H(p) / log(C)`` with ``H(p) = -sum p log p`` (Shannon entropy, normalised to [0, 1] by its
    maximum for C classes): 0 where one class has all the probability, 100 where all are equal. Pixels with
    any missing probability are 255. Percent inputs are renormalised to sum to 1 first (rounding).
    """
    arr = np.asarray(probs)
    if arr.ndim != 3:
        raise InputError(f"probabilities: expected shape (classes, h, w), got {arr.shape}")
    if arr.dtype == np.uint8:
        missing = (arr == NODATA).any(axis=0)
        p = arr.astype(np.float32) / 100.0
    else:
        p = arr.astype(np.float32)
        missing = ~np.isfinite(p).all(axis=0)
    out = np.full(arr.shape[1:], NODATA, dtype=np.uint8)
    n = arr.shape[0]
    if n < 2:
        out[~missing] = 0
        return out
    p = np.where(np.isfinite(p), np.clip(p, 0.0, 1.0), 0.0)
    total = p.sum(axis=0)
    ok = ~missing & (total > 0)
    p = p / np.where(total > 0, total, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=0) / np.log(n)
    out[ok] = np.clip(np.rint(100.0 * h[ok]), 0, 100).astype(np.uint8)
    return out


def overview_factors(width: int, height: int, *, blocksize: int) -> list[int]:
    """Decimation factors 2, 4, ... until the coarsest overview fits in one block (none for small maps)."""
    factors: list[int] = []
    factor = 1
    while max(width, height) / factor > blocksize:
        factor *= 2
        factors.append(factor)
    return factors


def _to_percent(values: npt.ArrayLike, name: str) -> npt.NDArray[np.uint8]:
    """uint8 percent (0..100, 255 nodata) from uint8 percent or float probabilities in [0, 1] (NaN nodata)."""
    arr = np.asarray(values)
    if arr.dtype == np.uint8:
        if np.any((arr > 100) & (arr != NODATA)):
            raise InputError(f"{name}: uint8 values must be percent 0..100 or 255 (nodata); rescale them")
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{name}: dtype {arr.dtype} is neither uint8 percent nor float probability")
    finite = np.isfinite(arr)
    out = np.full(arr.shape, NODATA, dtype=np.uint8)
    out[finite] = np.clip(np.rint(arr[finite] * 100.0), 0, 100).astype(np.uint8)
    return out


class CogWriter:
    """Write a crop map block by block; on a clean exit publish the class COG, the confidence COG and the
    ``.aux.xml`` atomically (layout in the module docstring).

    Give the grid either as ``geobox`` (an ``odc.geo.GeoBox``: ``.crs``, ``.affine``, ``.width``,
    ``.height``) or as ``crs`` + ``transform`` + ``width`` + ``height``. ``n_prob_bands`` is 0 or
    ``len(classes)`` (band ``3 + i`` of the confidence COG holds the probability of ``classes[i]``).
    ``metadata`` becomes dataset tags of both COGs (non-string values as JSON); use keys such as
    ``model``, ``start_date``, ``end_date``, ``scene_ids``. ``write_block`` may be called from several
    threads (writes are serialised).

    Example (``with`` publishes on success and cleans up on error)::

        with CogWriter("map.tif", crs=crs, transform=t, width=w, height=h, classes=cls) as cog:
            cog.write_block(Window(0, 0, 256, 256), class_block, confidence_block)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        classes: Sequence[ClassInfo],
        geobox: Any = None,
        crs: Any = None,
        transform: Affine | None = None,
        width: int | None = None,
        height: int | None = None,
        n_prob_bands: int = 0,
        metadata: Mapping[str, Any] | None = None,
        blocksize: int = 256,
        compress: str = "DEFLATE",
    ) -> None:
        self.path = check_writable(path)
        self.confidence_path = check_writable(confidence_path(self.path))
        self.classes = check_classes(classes)
        if geobox is not None:
            crs, transform = geobox.crs, geobox.affine
            width, height = int(geobox.width), int(geobox.height)
        if crs is None or transform is None or width is None or height is None:
            raise InputError("CogWriter needs geobox=, or crs=, transform=, width= and height= together")
        if width <= 0 or height <= 0:
            raise InputError(f"CogWriter: map size {width}x{height} is empty; the AOI covers no pixel")
        self.crs = CRS.from_user_input(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)
        self.transform = transform
        self.width, self.height = int(width), int(height)
        if n_prob_bands not in (0, len(self.classes)):
            raise InputError(
                f"n_prob_bands={n_prob_bands}: use 0 or the number of classes ({len(self.classes)})"
            )
        self.n_prob_bands = n_prob_bands
        self.metadata = dict(metadata or {})
        if blocksize % 16 or blocksize < 64:
            raise InputError(f"blocksize={blocksize}: use a multiple of 16, at least 64 (e.g. 256 or 512)")
        self.blocksize = blocksize
        self.compress = compress
        self._valid = np.zeros(256, dtype=bool)
        self._valid[[c.value for c in self.classes]] = True
        self._valid[NODATA] = True
        self._lock = threading.Lock()
        self._tmpdir: Path | None = None
        self._class_ds: DatasetWriter | None = None
        self._value_ds: DatasetWriter | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def __enter__(self) -> CogWriter:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def open(self) -> None:
        """Create the temporary folder and the two temporary tiled GeoTIFFs."""
        if self._tmpdir is not None:
            return
        tmpdir = self.path.parent / f".{self.path.name}.{uuid.uuid4().hex[:8]}.partial"
        try:
            tmpdir.mkdir()
            self._tmpdir = tmpdir
            profile: dict[str, Any] = {
                "driver": "GTiff", "width": self.width, "height": self.height, "dtype": "uint8",
                "nodata": NODATA, "crs": self.crs, "transform": self.transform, "tiled": True,
                "blockxsize": self.blocksize, "blockysize": self.blocksize, "BIGTIFF": "IF_SAFER",
            }  # fmt: skip
            # Uncompressed temporaries: windows that straddle tiles rewrite tiles in place, which with
            # compression would leak space; never-written tiles are filled with nodata on close.
            self._class_ds = rasterio.open(
                tmpdir / "class.tif", "w", count=1, photometric="palette", **profile
            )
            self._value_ds = rasterio.open(tmpdir / "values.tif", "w", count=2 + self.n_prob_bands, **profile)
            self._describe(self._class_ds, self._value_ds)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError | rasterio.errors.RasterioError):
                raise OutputError(f"output {self.path}: cannot create temporary files ({exc})") from exc
            raise

    def write_block(
        self,
        window: Window,
        class_block: npt.ArrayLike,
        confidence: npt.ArrayLike,
        probs: npt.ArrayLike | None = None,
    ) -> None:
        """Write one window: ``class_block`` (h, w) uint8 class values or 255; ``confidence`` (h, w) uint8
        percent or float [0, 1]; ``probs`` (n_classes, h, w) likewise (needed when the map has probability
        bands; when given otherwise it still sets the uncertainty band). Where the class is 255 the other
        bands are set to 255 too."""
        if self._class_ds is None or self._value_ds is None:
            raise RuntimeError("CogWriter.write_block called outside its `with` block (or after close)")
        row, col = int(window.row_off), int(window.col_off)
        h, w = int(window.height), int(window.width)
        if (row, col, h, w) != (window.row_off, window.col_off, window.height, window.width) or min(h, w) < 1:
            raise InputError(f"window {window} must have integer offsets and a positive integer size")
        if row < 0 or col < 0 or row + h > self.height or col + w > self.width:
            raise InputError(f"window {window} reaches outside the {self.width}x{self.height} map")
        cls = np.asarray(class_block)
        if cls.dtype != np.uint8 or cls.shape != (h, w):
            raise InputError(f"class block: expected uint8 {(h, w)}, got {cls.dtype} {cls.shape}")
        if not self._valid[cls].all():
            bad = sorted(set(np.unique(cls[~self._valid[cls]]).tolist()))
            raise InputError(f"class block holds values {bad} that are no class and not 255 (nodata)")
        conf = _to_percent(confidence, "confidence")
        if conf.shape != (h, w):
            raise InputError(f"confidence block: expected shape {(h, w)}, got {conf.shape}")
        p = None
        if probs is not None:
            p = _to_percent(probs, "probabilities")
            if p.shape != (len(self.classes), h, w):
                raise InputError(f"probabilities: expected shape {(len(self.classes), h, w)}, got {p.shape}")
        elif self.n_prob_bands:
            raise InputError(f"this map has {self.n_prob_bands} probability bands; pass probs=")
        uncertainty = normalised_entropy(p) if p is not None else np.full((h, w), NODATA, np.uint8)
        layers = [conf, uncertainty]
        if self.n_prob_bands and p is not None:
            layers.extend(p)
        values = np.stack(layers)
        values[:, cls == NODATA] = NODATA
        win = Window(col, row, w, h)
        with self._lock:
            self._class_ds.write(cls, 1, window=win)
            self._value_ds.write(values, window=win)

    def close(self) -> Path:
        """Build overviews, translate both to COGs, validate them, write the sidecar, move all into place."""
        if self._tmpdir is None:
            raise RuntimeError("CogWriter.close called before open (use it as a context manager)")
        tmpdir = self._tmpdir
        moves = [
            (tmpdir / "values.cog.tif", self.confidence_path),
            (tmpdir / "out.tif.aux.xml", sidecar_path(self.path)),
            (tmpdir / "class.cog.tif", self.path),
        ]
        moved: list[Path] = []
        try:
            assert self._class_ds is not None and self._value_ds is not None
            self._class_ds.close()
            self._value_ds.close()
            factors = overview_factors(self.width, self.height, blocksize=self.blocksize)
            for name, resampling in (("class.tif", Resampling.mode), ("values.tif", Resampling.average)):
                if factors:
                    with rasterio.open(tmpdir / name, "r+") as ds:
                        ds.build_overviews(factors, resampling)
                cog = tmpdir / name.replace(".tif", ".cog.tif")
                rasterio.shutil.copy(
                    tmpdir / name, cog, driver="COG", COMPRESS=self.compress, BLOCKSIZE=self.blocksize,
                    OVERVIEWS="FORCE_USE_EXISTING", BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS",
                )  # fmt: skip
                self._validate(cog)
            (tmpdir / "out.tif.aux.xml").write_text(pam_xml(self.classes), encoding="utf-8")
            for tmp, final in moves:  # the class COG last: its presence means the set is complete
                os.replace(tmp, final)
                moved.append(final)
        except BaseException as exc:
            for final in moved:
                final.unlink(missing_ok=True)
            self.abort()
            if isinstance(exc, OSError | rasterio.errors.RasterioError) and not isinstance(exc, OutputError):
                raise OutputError(f"output {self.path}: writing the COG failed ({exc})") from exc
            raise
        self.abort()  # only removes the (now nearly empty) temporary folder
        return self.path

    def abort(self) -> None:
        """Close and delete every temporary file; the output path is not touched."""
        for ds in (self._class_ds, self._value_ds):
            if ds is not None and not ds.closed:
                with contextlib.suppress(Exception):  # best effort while cleaning up after an error
                    ds.close()
        self._class_ds = self._value_ds = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    # -- helpers ---------------------------------------------------------------------------------------
    def _validate(self, cog: Path) -> None:
        from rio_cogeo.cogeo import cog_validate

        is_valid, errors, _warnings = cog_validate(str(cog), quiet=True)
        if not is_valid:
            raise OutputError(f"output {self.path}: the written COG is not valid ({'; '.join(errors)})")

    def band_names(self) -> list[str]:
        """Band descriptions of the confidence COG, in band order."""
        names = ["confidence", "uncertainty"]
        if self.n_prob_bands:
            names += [f"probability_{c.name}" for c in self.classes]
        return names

    def _describe(self, class_ds: DatasetWriter, value_ds: DatasetWriter) -> None:
        """Colour table, names, descriptions and tags on the temporary files (the COG driver copies them)."""
        tags = {k: v if isinstance(v, str) else json.dumps(v) for k, v in self.metadata.items()}
        tags["GEOCROP_CLASSES"] = json.dumps(
            [{"value": c.value, "name": c.name, "color": c.color} for c in self.classes]
        )
        tags["GEOCROP_NODATA"] = "255: masked, outside the AOI, or no clear observation"
        class_ds.update_tags(**tags, GEOCROP_CONFIDENCE=confidence_path(self.path).name)
        class_ds.set_band_description(1, "class")
        class_ds.update_tags(1, **{f"CLASS_{c.value}": c.name for c in self.classes})
        class_ds.write_colormap(1, colour_table(self.classes))
        value_ds.update_tags(**tags, GEOCROP_CLASS_MAP=self.path.name)
        for band, desc in enumerate(self.band_names(), 1):
            value_ds.set_band_description(band, desc)
            value_ds.update_tags(band, UNITS="percent")
        value_ds.update_tags(
            2, DEFINITION="normalised Shannon entropy of the class probabilities: 0 certain, 100 uniform"
        )


def colour_table(classes: Sequence[ClassInfo]) -> dict[int, tuple[int, int, int, int]]:
    """The class band's colour table: class colours, black elsewhere (a TIFF palette has no alpha; 255 is
    the band's nodata value, so readers leave it transparent)."""
    table = {value: (0, 0, 0, 0) for value in range(256)}
    for c in classes:
        table[c.value] = (*c.rgb, 255)
    return table


def pam_xml(classes: Sequence[ClassInfo]) -> str:
    """The PAM sidecar for the class band: category names (index = pixel value) and a thematic RAT.

    The colour table is inside the class COG; GeoTIFF has no place for category names or a RAT, so GDAL
    reads them from this sidecar (QGIS labels its legend with them).
    """
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    by_value = {c.value: c for c in classes}
    cats = ET.SubElement(band, "CategoryNames")
    for value in range(max(by_value) + 1):
        ET.SubElement(cats, "Category").text = by_value[value].name if value in by_value else ""
    rat = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    # GDAL field types: 0 integer, 2 string; usages: 5 MinMax (the value), 2 Name, 6/7/8/9 R/G/B/A.
    fields = [
        ("Value", 0, 5),
        ("Class", 2, 2),
        ("Red", 0, 6),
        ("Green", 0, 7),
        ("Blue", 0, 8),
        ("Alpha", 0, 9),
    ]
    for index, (name, ftype, usage) in enumerate(fields):
        fd = ET.SubElement(rat, "FieldDefn", index=str(index))
        ET.SubElement(fd, "Name").text = name
        ET.SubElement(fd, "Type").text = str(ftype)
        ET.SubElement(fd, "Usage").text = str(usage)
    for index, c in enumerate(sorted(classes, key=lambda c: c.value)):
        row = ET.SubElement(rat, "Row", index=str(index))
        for cell in (c.value, c.name, *c.rgb, 255):
            ET.SubElement(row, "F").text = str(cell)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"
