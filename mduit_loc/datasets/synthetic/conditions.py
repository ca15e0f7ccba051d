"""Per-condition appearance parameters (lighting, weather, season, camera) and recording dates.

Dates follow the RobotCar Seasons traversals, so timestamps look like the real ones.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass, replace

from mduit_loc.datasets.layout import ALL_CONDITIONS
from mduit_loc.datasets.synthetic.materials import Foliage

RGB = tuple[float, float, float]
_AUTUMN = (0.50, 0.36, 0.10)
_SUMMER = (0.16, 0.34, 0.08)
_BARE = (0.3, 0.3, 0.1)


@dataclass(frozen=True)
class ConditionStyle:
    foliage: Foliage
    ambient: RGB                       # sky light on surfaces
    sky_zenith: RGB
    sky_horizon: RGB
    date: tuple[int, int, int, int, int]   # year, month, day, hour, minute (local)
    sun: RGB | None = None             # direct sunlight colour x intensity
    sun_elevation_deg: float = 30.0
    exposure: float = 1.0
    fog_density: float = 0.002         # per metre
    fog_rgb: RGB = (0.8, 0.82, 0.85)
    wet: float = 0.0                   # ground reflectivity from water
    snow: float = 0.0                  # snow cover of up-facing surfaces
    lamps: float = 0.0                 # street lamp intensity (0: off)
    lit_windows: float = 0.0           # share of windows lit from inside
    car_lights: bool = False           # headlight cone and tail-light glow of the own car
    droplets: int = 0                  # water drops on the lens
    streaks: int = 0                   # rain streaks
    flakes: int = 0                    # falling snow flakes
    saturation: float = 1.0
    white_balance: RGB = (1.0, 1.0, 1.0)
    noise: float = 0.0                 # sensor noise sigma (display units)
    blur: float = 0.0                  # defocus / motion blur sigma, in pixels at 256 px
    bloom: float = 0.6

    def epoch_seconds(self) -> int:
        year, month, day, hour, minute = self.date
        return calendar.timegm((year, month, day, hour, minute, 0))


# Night: the sky is close to black (RobotCar's night frames show no skyline), so the outline of the
# buildings against the sky, which a thumbnail matches well, is gone; lamps, lit windows and car lights
# are what is left to see.
_NIGHT = ConditionStyle(
    foliage=Foliage(0.0, _BARE), ambient=(0.0035, 0.0035, 0.006), sky_zenith=(0.002, 0.002, 0.003),
    sky_horizon=(0.004, 0.004, 0.005), date=(2014, 12, 10, 18, 50), exposure=3.2, fog_density=0.008,
    fog_rgb=(0.004, 0.004, 0.004), lamps=14.0, lit_windows=0.3, car_lights=True, saturation=0.85,
    white_balance=(1.1, 0.95, 0.8), noise=0.065, blur=1.3, bloom=1.0,
)

STYLES: dict[str, ConditionStyle] = {
    "overcast-reference": ConditionStyle(
        foliage=Foliage(0.55, _AUTUMN), ambient=(1.0, 1.0, 1.02), sky_zenith=(0.74, 0.77, 0.82),
        sky_horizon=(0.86, 0.87, 0.88), date=(2014, 11, 28, 12, 10)),
    "overcast-summer": ConditionStyle(
        foliage=Foliage(1.0, _SUMMER), ambient=(1.12, 1.08, 0.98), sky_zenith=(0.80, 0.82, 0.86),
        sky_horizon=(0.92, 0.91, 0.88), date=(2015, 5, 22, 11, 40), saturation=1.15, fog_density=0.004,
        fog_rgb=(0.85, 0.85, 0.82)),
    "overcast-winter": ConditionStyle(
        foliage=Foliage(0.0, _BARE), ambient=(0.78, 0.84, 0.96), sky_zenith=(0.68, 0.71, 0.76),
        sky_horizon=(0.78, 0.80, 0.84), date=(2015, 11, 13, 10, 20), saturation=0.8, white_balance=(0.95, 1.0, 1.08)),
    "sun": ConditionStyle(
        foliage=Foliage(0.15, _SUMMER), ambient=(0.32, 0.40, 0.56), sky_zenith=(0.22, 0.42, 0.85),
        sky_horizon=(0.70, 0.80, 0.95), sun=(2.3, 2.1, 1.8), sun_elevation_deg=32.0,
        date=(2015, 3, 10, 10, 50), exposure=0.9, saturation=1.2, fog_density=0.001),
    "dawn": ConditionStyle(
        foliage=Foliage(0.0, _BARE), ambient=(0.3, 0.28, 0.36), sky_zenith=(0.20, 0.26, 0.48),
        sky_horizon=(1.0, 0.58, 0.32), sun=(1.2, 0.62, 0.3), sun_elevation_deg=7.0,
        date=(2014, 12, 16, 8, 20), exposure=1.5, lamps=3.0, lit_windows=0.08, fog_density=0.006,
        fog_rgb=(0.7, 0.5, 0.4), white_balance=(1.05, 0.98, 0.9)),
    "dusk": ConditionStyle(
        foliage=Foliage(0.0, _BARE), ambient=(0.24, 0.21, 0.3), sky_zenith=(0.14, 0.16, 0.36),
        sky_horizon=(0.95, 0.45, 0.32), sun=(1.0, 0.45, 0.26), sun_elevation_deg=4.5,
        date=(2015, 2, 20, 17, 25), exposure=1.7, lamps=5.0, lit_windows=0.18, fog_density=0.004,
        fog_rgb=(0.5, 0.35, 0.35), white_balance=(1.08, 0.95, 0.92), noise=0.01),
    "rain": ConditionStyle(
        foliage=Foliage(0.45, _AUTUMN), ambient=(0.50, 0.52, 0.56), sky_zenith=(0.46, 0.48, 0.52),
        sky_horizon=(0.58, 0.60, 0.63), date=(2014, 11, 25, 14, 30), exposure=1.25, fog_density=0.014,
        fog_rgb=(0.5, 0.52, 0.55), wet=0.7, droplets=8, streaks=220, saturation=0.75, blur=0.5),
    "snow": ConditionStyle(
        foliage=Foliage(0.0, _BARE), ambient=(0.95, 0.97, 1.03), sky_zenith=(0.82, 0.84, 0.88),
        sky_horizon=(0.90, 0.91, 0.93), date=(2015, 2, 3, 10, 5), exposure=0.95, fog_density=0.012,
        fog_rgb=(0.86, 0.88, 0.92), snow=0.8, flakes=600, saturation=0.7, white_balance=(0.97, 1.0, 1.06)),
    "night": _NIGHT,
    "night-rain": replace(_NIGHT, date=(2014, 12, 17, 19, 40), wet=0.9, droplets=18, streaks=160, blur=1.5,
                          noise=0.05, fog_density=0.01),
}

assert set(STYLES) == set(ALL_CONDITIONS)
CONDITION_INDEX = {name: index for index, name in enumerate(ALL_CONDITIONS)}
