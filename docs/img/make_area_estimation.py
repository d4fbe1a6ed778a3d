"""Draw docs/img/area_estimation_*.png: the report's two plots for Olofsson et al. (2014)'s worked example.

Run from the repository root: ``.venv/bin/python docs/img/make_area_estimation.py``.
"""

from __future__ import annotations

from pathlib import Path

from geocrop.post.assess import stratified_estimates
from geocrop.post.assess_report import plot_areas, plot_error_matrix

HERE = Path(__file__).resolve().parent


def main() -> None:
    estimates = stratified_estimates(
        [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]],  # Table 8: rows map, cols reference
        [200_000, 150_000, 3_200_000, 6_450_000],  # mapped 30 m pixels
        classes=["deforestation", "forest gain", "stable forest", "stable non-forest"],
        pixel_area=900.0,
    )
    print(plot_areas(estimates, HERE / "area_estimation_areas.png"))
    print(plot_error_matrix(estimates, HERE / "area_estimation_error_matrix.png"))


if __name__ == "__main__":
    main()
