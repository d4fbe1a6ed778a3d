"""Accuracy and area from a stratified random sample: the estimators of Olofsson et al. (2014).

Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014). Good
practices for estimating area and assessing accuracy of land change. Remote Sensing of Environment 148,
42-57, doi:10.1016/j.rse.2014.02.015 (Section 4.3 and the worked example of Section 5; the same
estimators as Olofsson et al. 2013, RSE 129:122-131, and Cochran 1977 for stratified sampling).

Strata are the map classes. With ``N_i`` pixels mapped as class i (``W_i = N_i / N``), ``n_ij`` sample
points mapped i and labelled j in the reference, and ``n_i. = sum_j n_ij``:

- estimated area proportion of each cell: ``p_ij = W_i n_ij / n_i.``;
- overall accuracy ``O = sum_j p_jj``, user's accuracy ``U_i = p_ii / p_i. = n_ii / n_i.``, producer's
  accuracy ``P_j = p_jj / p_.j``;
- ``V(O) = sum_i W_i^2 U_i (1 - U_i) / (n_i. - 1)``; ``V(U_i) = U_i (1 - U_i) / (n_i. - 1)``;
- ``V(P_j) = [N_j.^2 (1 - P_j)^2 U_j (1 - U_j) / (n_j. - 1)
  + P_j^2 sum_{i != j} N_i.^2 (n_ij / n_i.)(1 - n_ij / n_i.) / (n_i. - 1)] / N_.j^2`` with
  ``N_.j = sum_i N_i. n_ij / n_i.`` (the estimated number of pixels of reference class j);
- area proportion of class k ``p_.k = sum_i W_i n_ik / n_i.`` with standard error
  ``S(p_.k) = sqrt(sum_i W_i^2 (n_ik / n_i.)(1 - n_ik / n_i.) / (n_i. - 1))``; areas are ``p_.k`` and
  ``S(p_.k)`` times the mapped total.

95 % confidence intervals are ``estimate +- 1.96 S`` (the paper's z). Every variance divides by
``n_i. - 1``, so each stratum with mapped pixels needs at least two sample points. The reference classes
need not be the map classes: a class labelled in the reference but never mapped has ``N_i = 0`` (no
stratum, a zero row, user's accuracy undefined), producer's accuracy 0 and an area ``p_.k`` from the
points of the other strata labelled with it; the map classes' weights are unchanged. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from geocrop.errors import InputError

__all__ = ["Z95", "AreaEstimates", "stratified_estimates"]

#: The normal quantile of a two-sided 95 % interval, as Olofsson et al. (2014) round it.
Z95 = 1.96

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AreaEstimates:
    """The stratified estimates for one error matrix (rows: map class = stratum, columns: reference).

    Arrays have one entry per class, in ``classes`` order; ``counts`` and ``proportions`` are (k, k).
    Accuracies and proportions are fractions (0..1); NaN where undefined (a producer's accuracy of a class
    never seen in the reference, a user's accuracy of a class with no mapped pixel). A class with no mapped
    pixel (a reference-only class, e.g. a crop the map cannot show, or ``other``) has a zero row: it is a
    column of omission only, with producer's accuracy 0 and its area estimated from the other strata's
    points labelled with it. ``pixel_area`` (m2) turns pixel counts into hectares when known.
    """

    classes: tuple[str, ...]
    counts: npt.NDArray[np.int64]
    mapped_pixels: FloatArray
    proportions: FloatArray
    overall_accuracy: float
    overall_accuracy_se: float
    users_accuracy: FloatArray
    users_accuracy_se: FloatArray
    producers_accuracy: FloatArray
    producers_accuracy_se: FloatArray
    area_proportion: FloatArray
    area_proportion_se: FloatArray
    pixel_area: float | None = None

    @property
    def strata(self) -> npt.NDArray[np.bool_]:
        """True for the map classes with mapped pixels (the strata, the error matrix's rows); False for a
        reference-only class (labelled in the reference, never mapped): a column of omission only."""
        return np.asarray(self.mapped_pixels > 0)

    @property
    def total_pixels(self) -> float:
        return float(self.mapped_pixels.sum())

    @property
    def weights(self) -> FloatArray:
        """``W_i``: each map class's share of the mapped pixels."""
        return self.mapped_pixels / self.total_pixels

    @property
    def area_pixels(self) -> FloatArray:
        """Error-adjusted area of each reference class, in pixels."""
        return self.area_proportion * self.total_pixels

    @property
    def area_pixels_se(self) -> FloatArray:
        return self.area_proportion_se * self.total_pixels

    @property
    def area_ha(self) -> FloatArray | None:
        """Error-adjusted area in hectares (None without ``pixel_area``)."""
        return None if self.pixel_area is None else self.area_pixels * self.pixel_area / 1e4

    @property
    def area_ha_se(self) -> FloatArray | None:
        return None if self.pixel_area is None else self.area_pixels_se * self.pixel_area / 1e4

    @staticmethod
    def ci95(se: Any) -> Any:
        """Half-width of the 95 % confidence interval of an estimate with standard error ``se``."""
        return Z95 * np.asarray(se, dtype=float) if np.ndim(se) else Z95 * float(se)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (NaN -> None), per class and overall."""

        def num(value: Any) -> float | None:
            v = float(value)
            return None if not np.isfinite(v) else v

        ha, ha_se = self.area_ha, self.area_ha_se
        per_class = []
        for k, name in enumerate(self.classes):
            row: dict[str, Any] = {
                "class": name,
                "mapped_pixels": num(self.mapped_pixels[k]),
                "mapped_proportion": num(self.weights[k]),
                "reference_only": not bool(self.strata[k]),
                "sample_count": int(self.counts[k].sum()),
                "reference_count": int(self.counts[:, k].sum()),
                "users_accuracy": num(self.users_accuracy[k]),
                "users_accuracy_ci95": num(self.ci95(self.users_accuracy_se[k])),
                "producers_accuracy": num(self.producers_accuracy[k]),
                "producers_accuracy_ci95": num(self.ci95(self.producers_accuracy_se[k])),
                "area_proportion": num(self.area_proportion[k]),
                "area_proportion_ci95": num(self.ci95(self.area_proportion_se[k])),
                "area_pixels": num(self.area_pixels[k]),
                "area_pixels_ci95": num(self.ci95(self.area_pixels_se[k])),
            }
            if ha is not None and ha_se is not None:
                row["mapped_ha"] = num(self.mapped_pixels[k] * (self.pixel_area or 0.0) / 1e4)
                row["area_ha"] = num(ha[k])
                row["area_ha_ci95"] = num(self.ci95(ha_se[k]))
            per_class.append(row)
        return {
            "estimator": "stratified (Olofsson et al. 2014, Remote Sens. Environ. 148:42-57)",
            "z": Z95,
            "classes": list(self.classes),
            "pixel_area_m2": self.pixel_area,
            "overall_accuracy": num(self.overall_accuracy),
            "overall_accuracy_ci95": num(self.ci95(self.overall_accuracy_se)),
            "per_class": per_class,
            "error_matrix_counts": self.counts.tolist(),
            "error_matrix_proportions": [[num(v) for v in row] for row in self.proportions],
        }


def stratified_estimates(
    counts: npt.ArrayLike,
    mapped_pixels: npt.ArrayLike,
    *,
    classes: Sequence[str] | None = None,
    pixel_area: float | None = None,
) -> AreaEstimates:
    """Estimate accuracy and class areas from a stratified sample (module docstring for the formulas).

    ``counts``: (k, k) sample counts ``n_ij``, rows the map class (stratum) of each point, columns its
    reference class. ``mapped_pixels``: (k,) pixels mapped as each class (``N_i``; any area unit works, the
    proportions do not depend on it). A class with no mapped pixel is not a stratum (weight 0) and must
    have no sample row; a class with mapped pixels needs at least 2 sample points, since every variance
    divides by ``n_i. - 1``.
    """
    n = np.asarray(counts)
    if n.ndim != 2 or n.shape[0] != n.shape[1] or n.shape[0] == 0:
        raise InputError(f"`counts` must be a square (k, k) error matrix, not {n.shape}", param="counts")
    if np.any(n < 0) or not np.all(np.equal(np.mod(n, 1), 0)):
        raise InputError("`counts` must hold non-negative whole numbers of sample points", param="counts")
    n = n.astype(np.int64)
    k = n.shape[0]
    big_n = np.asarray(mapped_pixels, dtype=float)
    if big_n.shape != (k,) or np.any(big_n < 0) or not np.all(np.isfinite(big_n)) or big_n.sum() <= 0:
        raise InputError(
            f"`mapped_pixels` must be {k} non-negative numbers with a positive sum, got {big_n.tolist()}",
            param="mapped_pixels",
        )
    names = tuple(classes) if classes is not None else tuple(str(i) for i in range(k))
    if len(names) != k:
        raise InputError(f"`classes` names {len(names)} classes for a {k}x{k} matrix", param="classes")
    n_i = n.sum(axis=1).astype(float)
    for i in range(k):
        if big_n[i] == 0 and n_i[i] > 0:
            raise InputError(
                f"map class {names[i]!r} has no mapped pixel but {int(n_i[i])} sample points; "
                "check the map and the sample belong together",
                param="reference",
            )
        if big_n[i] > 0 and n_i[i] < 2:
            raise InputError(
                f"map class {names[i]!r} has {int(n_i[i])} reference point(s); the variance estimator "
                "divides by n_i - 1, so every mapped class needs at least 2: label more points in it "
                "(e.g. a stratified sample with a minimum per class)",
                param="reference",
            )
    stratum = big_n > 0
    w = big_n / big_n.sum()
    safe_n = np.where(stratum, n_i, 1.0)
    frac = n / safe_n[:, None]  # n_ij / n_i.  (rows of absent classes are zero)
    p = w[:, None] * frac
    var_term = np.where(stratum, 1.0 / np.where(stratum, n_i - 1.0, 1.0), 0.0)  # 1 / (n_i. - 1)

    users = np.where(stratum, np.diag(frac), np.nan)
    users_var = np.where(stratum, users * (1 - users) * var_term, np.nan)
    overall = float(np.trace(p))
    overall_var = float(np.nansum(np.where(stratum, w**2 * users * (1 - users) * var_term, 0.0)))

    area = p.sum(axis=0)
    area_var = ((w**2)[:, None] * frac * (1 - frac) * var_term[:, None]).sum(axis=0)

    est_ref = (big_n[:, None] * frac).sum(axis=0)  # N_.j: estimated pixels of reference class j
    cell_var = (big_n**2)[:, None] * frac * (1 - frac) * var_term[:, None]  # N_i^2 f(1-f)/(n_i-1)
    producers = np.full(k, np.nan)
    producers_var = np.full(k, np.nan)
    for j in range(k):
        if est_ref[j] <= 0:
            continue
        pj = p[j, j] / area[j]
        own = big_n[j] ** 2 * (1 - pj) ** 2 * (users_var[j] if stratum[j] else 0.0)
        others = pj**2 * (cell_var[:, j].sum() - cell_var[j, j])
        producers[j] = pj
        producers_var[j] = (own + others) / est_ref[j] ** 2
    return AreaEstimates(
        classes=names,
        counts=n,
        mapped_pixels=big_n,
        proportions=p,
        overall_accuracy=overall,
        overall_accuracy_se=float(np.sqrt(overall_var)),
        users_accuracy=users,
        users_accuracy_se=np.sqrt(users_var),
        producers_accuracy=producers,
        producers_accuracy_se=np.sqrt(producers_var),
        area_proportion=area,
        area_proportion_se=np.sqrt(area_var),
        pixel_area=pixel_area,
    )
