"""The simulated ground: per-field calendar jitter, per-pixel texture, and the daily surface mixture.

Everything here lives on the PlanetScope grid (3.33 m, the S2 grid refined 3x), because that is the
finest scale either sensor sees; Sentinel-2 pixels are 3x3 block means of it. The surface of each pixel
is a linear mixture (`geocrop.sim.phenology.ENDMEMBERS`) of green leaves, dry canopy, flowers, bare soil
and road, with cover fractions from the crop calendars. Part of the simulator, a test instrument.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from geocrop.sim.parcels import Parcel, smooth_noise
from geocrop.sim.phenology import (
    CROP_CALENDARS,
    CROP_TYPES,
    DRY_LEAF_FACTOR,
    ENDMEMBERS,
    WET_SOIL_FACTOR,
    canopy_fractions,
)

__all__ = ["N_COMPONENTS", "Ground"]

F32 = npt.NDArray[np.float32]
#: Mixture components, in the order of `Ground.mixture`'s fractions: green, dry, flower, soil, road.
N_COMPONENTS = 5
_CEREALS = {"winter_wheat", "winter_barley", "winter_rapeseed", "spring_oats"}
_LAG_DAYS = 4


class Ground:
    """Fixed ground state of one simulated area, drawn from ``rng`` once.

    ``planet_parcel_raster`` (3H, 3W) holds parcel ids (0 = tracks and roads between fields).
    """

    def __init__(
        self,
        parcels: tuple[Parcel, ...],
        planet_parcel_raster: npt.NDArray[np.int32],
        rng: np.random.Generator,
        *,
        n_days: int,
    ) -> None:
        self.parcels = parcels
        self.pid = pid = planet_parcel_raster
        fine = pid.shape
        n = len(parcels) + 1
        # Per field: calendar delay (sowing date, variety), vigour, a winter catch crop, soil brightness.
        self.shift = np.clip(rng.normal(0.0, 6.0, n), -15.0, 15.0)
        self.vigour = rng.uniform(0.9, 1.05, n)
        self.cover_crop = rng.random(n) < 0.3
        soil = rng.uniform(0.85, 1.15, n)
        angle = rng.uniform(0.0, np.pi, n)
        self.road = road = pid == 0
        # Headlands: the outermost Planet pixel of a field grows less (compaction, turning machinery).
        edge = np.zeros(fine, dtype=bool)
        edge[1:, :] |= pid[1:, :] != pid[:-1, :]
        edge[:-1, :] |= pid[:-1, :] != pid[1:, :]
        edge[:, 1:] |= pid[:, 1:] != pid[:, :-1]
        edge[:, :-1] |= pid[:, :-1] != pid[:, 1:]
        texture = 1.0 + 0.06 * smooth_noise(rng, fine, 9.0) + 0.02 * rng.standard_normal(fine)
        texture = np.where(edge & ~road, texture * 0.88, texture)
        # Tramlines of cereals and rapeseed: a 3.3 m wheel track every 20 m, at the field's angle.
        rows, cols = np.indices(fine)
        a = angle[pid]
        phase = np.mod(cols * np.cos(a) + rows * np.sin(a), 6.0)
        cereal = np.isin(pid, [p.parcel_id for p in parcels if p.crop in _CEREALS])
        self.texture = np.where(cereal & (phase < 1.0), texture * 0.8, texture).astype(np.float32)
        # Parts of a field run a few days ahead or behind (in units of _LAG_DAYS).
        self.lag = (0.8 * smooth_noise(rng, fine, 12.0)).astype(np.float32)
        self.brightness = (soil[pid] * (1.0 + 0.07 * smooth_noise(rng, fine, 15.0))).astype(np.float32)
        self.verge = np.clip(0.3 + 0.12 * smooth_noise(rng, fine, 4.0), 0.05, 0.6).astype(np.float32)
        self.by_crop = {
            crop: np.array([p.parcel_id for p in parcels if p.crop == crop], dtype=np.intp)
            for crop in CROP_TYPES
        }
        # Soil moisture (0 dry .. 1 wet): a daily bucket filled by rain showers, wetter in winter.
        self.moisture = np.zeros(n_days)
        level = 0.5
        for d in range(n_days):
            rain_p = 0.28 + 0.1 * math.cos(2 * math.pi * (d - 15) / 365.25)
            level = 0.85 * level + (rng.uniform(0.2, 0.6) if rng.random() < rain_p else 0.0)
            self.moisture[d] = min(level, 1.0)
        # Cover of every field on every day (and _LAG_DAYS beyond the year), computed once: (D, 3, n).
        days = np.arange(n_days + _LAG_DAYS, dtype=np.float64) + 1.0
        self.calendar = self.field_fractions(days).astype(np.float32)
        # Flat copies for the daily gather (fancy indexing on flat arrays is the fast path).
        self._pid_flat = pid.ravel()
        self._lag_flat = self.lag.ravel()
        self._texture_flat = self.texture.ravel()
        self._brightness_flat = self.brightness.ravel()
        self._road_idx = np.flatnonzero(road)
        self._verge_road = self.verge.ravel()[self._road_idx]
        self._field_mask = (~road).ravel().astype(np.float32)

    def field_fractions(self, doy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """(D, 3, n_parcels + 1) green, dry and flower cover of every field on days of year ``doy`` (D,)."""
        out = np.zeros((doy.size, 3, len(self.parcels) + 1))
        for crop, ids in self.by_crop.items():
            if ids.size:
                out[:, :, ids] = np.stack(
                    canopy_fractions(
                        CROP_CALENDARS[crop],
                        doy[:, None],
                        shift=self.shift[ids],
                        vigour=self.vigour[ids],
                        cover_crop=self.cover_crop[ids],
                    ),
                    axis=1,
                )
        return out

    def mixture(self, day: int) -> tuple[F32, F32]:
        """Clear-sky ground on day offset ``day`` (0 = 1 January) as a linear mixture.

        Returns ``(fractions, spectra)``: cover fractions (5, 3H, 3W) of green leaves, dry canopy, flowers,
        bare soil and road surface (brightness folded in), and that day's endmember spectra (12, 5), so
        reflectance = ``spectra @ fractions``. Mixing is linear, so it commutes with block means.
        """
        base = self.calendar[day]
        slope = self.calendar[day + _LAG_DAYS] - base
        frac = np.empty((N_COMPONENTS, self.pid.size), dtype=np.float32)
        # Gather each field's cover onto its pixels; parts of a field run a few days ahead or behind.
        frac[:3] = np.take(base, self._pid_flat, axis=1) + self._lag_flat * np.take(
            slope, self._pid_flat, axis=1
        )
        frac[0] *= self._texture_flat
        np.clip(frac[:3], 0.0, 1.0, out=frac[:3])
        season = 0.5 + 0.5 * math.sin(2 * math.pi * (day - 80) / 365.25)
        road = self._road_idx
        frac[0, road] = self._verge_road * (0.5 + 0.6 * season)  # grass verges along the tracks
        frac[1, road] = 0.1
        frac[2, road] = 0.0
        frac[:3] /= np.maximum(frac[:3].sum(axis=0), 1.0)
        bare = np.maximum(1.0 - frac[:3].sum(axis=0), 0.0) * self._brightness_flat
        np.multiply(bare, self._field_mask, out=frac[3])
        np.multiply(bare, 1.0 - self._field_mask, out=frac[4])
        frac = frac.reshape(N_COMPONENTS, *self.pid.shape)
        m = float(self.moisture[day])
        # Summer drought dries leaves (SWIR up); rain darkens soil (SWIR most).
        stress = 0.25 * math.exp(-0.5 * ((day - 200) / 25.0) ** 2) * (1.0 - m)
        spectra = ENDMEMBERS.T.copy()  # (12, 5)
        spectra[:, 0] *= 1.0 + stress * DRY_LEAF_FACTOR
        spectra[:, 3] *= 1.0 - m * (1.0 - WET_SOIL_FACTOR)
        return frac, spectra.astype(np.float32)
