"""Generator settings that change how consumption behaves (`bua generate --variant FILE`).

The default reproduces the generator the estimator was developed on. Other settings make portfolios
the estimator was NOT shaped on (bench/accuracy.py ``--variant``; bench/variants/*.json): other
climates and weather shocks, per-site heating and cooling balance points, other sensitivities and
noise, growth or decline of each site's load, a seasonal base load that does not follow the
temperature (the BDEW H0 standard profile's dynamisation, shifted half a year for the southern
hemisphere). Every knob's default leaves the generator's random draws and bytes as they were; a
knob that is set draws from its own random stream.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Variant:
    name: str = "default"
    # weather: sd of the regional day-to-day temperature noise and an offset of every climate (°C)
    temp_noise: float = 3.0
    temp_shift: float = 0.0
    # regional shocks: heat waves and cold snaps per jurisdiction and year, their size (°C) and days
    shock_rate: float = 0.0
    shock_size: float = 6.0
    shock_days: int = 5
    # heating / cooling balance point of each site (°C): mean and site-to-site sd
    heat_base: float = 18.0
    heat_base_sd: float = 0.0
    cool_base: float = 21.0
    cool_base_sd: float = 0.0
    # sensitivities: scale of the heating and cooling slopes, spread (lognormal sigma) between sites
    heat_scale: float = 1.0
    cool_scale: float = 1.0
    sens_sigma: float = 0.6
    # day-to-day noise (lognormal sigma) of basic registers' and interval registers' daily use
    basic_day_noise: float = 0.12
    interval_day_noise: float = 0.10
    # yearly growth of each site's base load: sd between sites (0.1 = ±10% a year)
    drift_sd: float = 0.0
    # "bdew": the base load follows the BDEW H0 dynamisation factor (winter +24%, summer −20%)
    base_season: str = "none"
    # business weekend use relative to weekdays
    business_weekend: float = 0.45
    # a weather station's daily deviation from its region's temperature (sd, °C), and its bias
    station_noise: float = 0.5
    station_bias_sd: float = 0.7

    @classmethod
    def load(cls, source: str | Path | dict | None) -> Variant:
        """A variant from a JSON file, a dict of knobs, or None (the default)."""
        if source is None:
            return cls()
        data = source if isinstance(source, dict) else json.loads(Path(source).read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known - {"comment"})
        if unknown:
            raise ValueError(
                f"unknown generator variant setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        return cls(**{k: v for k, v in data.items() if k in known})

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def is_default(self) -> bool:
        return self.as_dict() | {"name": "default"} == Variant().as_dict()


def bdew_dynamisation(day_of_year: np.ndarray, southern: bool = True) -> np.ndarray:
    """BDEW H0 dynamisation factor F(t) = −3.92e−10·t⁴ + 3.2e−7·t³ − 7.02e−5·t² + 2.1e−3·t + 1.24
    (t = day of year; 1.24 in northern midwinter, ~0.8 in midsummer), shifted by half a year for the
    southern hemisphere and normalised to mean 1 over the year."""
    t = (np.asarray(day_of_year, dtype=np.float64) + (182.0 if southern else 0.0) - 1.0) % 365.0 + 1.0
    f = -3.92e-10 * t**4 + 3.2e-7 * t**3 - 7.02e-5 * t**2 + 2.1e-3 * t + 1.24
    yr = np.arange(1, 366, dtype=np.float64)
    mean = (-3.92e-10 * yr**4 + 3.2e-7 * yr**3 - 7.02e-5 * yr**2 + 2.1e-3 * yr + 1.24).mean()
    return f / mean
