"""Linear-light shading: sky, ambient, sun with hard shadows, street lamps, the own car's
head/tail lights, lit windows, glass reflections, snow cover and wet ground."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mduit_loc.datasets.synthetic.conditions import ConditionStyle
from mduit_loc.datasets.synthetic.facades import Material
from mduit_loc.datasets.synthetic.noise import fbm, hash01
from mduit_loc.datasets.synthetic.quads import Kind
from mduit_loc.datasets.synthetic.surface import Surface
from mduit_loc.datasets.synthetic.world import LANE_OFFSET, ROAD_HALF_WIDTH

SNOW_RGB = np.array([0.9, 0.92, 0.96], np.float32)
_GLASS_REFLECTANCE = {Material.WINDOW: 0.35, Material.GLASS_WALL: 0.55, Material.CAR_GLASS: 0.3,
                      Material.CAR_PAINT: 0.08}
# (position in the car frame, direction, colour, intensity, cone cosines (outer, inner))
_CAR_LIGHTS = [
    ((2.2, 0.65, 0.65), (1.0, 0.0, -0.09), (1.0, 0.95, 0.85), 60.0, (0.86, 0.96)),
    ((2.2, -0.65, 0.65), (1.0, 0.0, -0.09), (1.0, 0.95, 0.85), 60.0, (0.86, 0.96)),
    ((-2.3, 0.7, 0.85), (-1.0, 0.0, -0.12), (1.0, 0.06, 0.03), 4.0, (0.55, 0.8)),
    ((-2.3, -0.7, 0.85), (-1.0, 0.0, -0.12), (1.0, 0.06, 0.03), 4.0, (0.55, 0.8)),
]


def sun_direction(style: ConditionStyle, azimuth: float) -> np.ndarray:
    elevation = np.radians(style.sun_elevation_deg)
    return np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)],
                    np.float32)


def sky_colour(directions: np.ndarray, style: ConditionStyle, sun_dir: np.ndarray | None,
               cloud_seed: int) -> np.ndarray:
    d = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    elevation = np.clip(d[:, 2], 0.0, 1.0)
    horizon, zenith = np.asarray(style.sky_horizon, np.float32), np.asarray(style.sky_zenith, np.float32)
    rgb = horizon + (zenith - horizon) * np.sqrt(elevation)[:, None]
    # clouds: brightness variation over the sky dome (seeded per traversal)
    azimuth = np.arctan2(d[:, 1], d[:, 0])
    clouds = fbm(azimuth * 3.0 / np.maximum(elevation + 0.3, 0.3), elevation * 6.0, cloud_seed, 1.0, octaves=3)
    rgb = rgb * (0.85 + 0.3 * clouds)[:, None]
    if sun_dir is not None and style.sun is not None:
        cos = d @ sun_dir
        glow = 0.35 * np.exp((cos - 1.0) * 30.0) + 12.0 * (cos > np.cos(np.radians(0.8)))
        rgb = rgb + glow[:, None] * np.asarray(style.sun, np.float32) / 3.0
    return rgb.astype(np.float32)


def apply_snow(surface: Surface, u: np.ndarray, v: np.ndarray, style: ConditionStyle, seed: int) -> None:
    """Whiten up-facing surfaces, ledges and branches; keep wheel tracks on the road."""
    if style.snow <= 0:
        return
    x, y = surface.position[:, 0], surface.position[:, 1]
    patchy = np.clip(fbm(x, y, seed, 1.5, octaves=3) * 2.2 - 0.35, 0.0, 1.0)
    cover = np.zeros(len(x), np.float32)
    up = surface.hit & (surface.normal[:, 2] > 0.7)
    cover[up] = style.snow * (0.55 + 0.45 * patchy[up])
    road = surface.kind == Kind.ROAD
    lane_v = np.abs(np.abs(v - ROAD_HALF_WIDTH) - LANE_OFFSET)
    tracks = road & (np.abs(lane_v - 0.8) < 0.35)
    cover[tracks] *= 0.25
    cover[road & ~tracks] *= 0.85
    ledges = (surface.material == Material.LEDGE) | (surface.material == Material.FRAME)
    cover[ledges] = style.snow * 0.8
    bark = surface.material == Material.BARK
    cover[bark] = style.snow * 0.5 * (hash01(np.floor(u[bark] * 20).astype(np.int64),
                                             np.floor(v[bark] * 20).astype(np.int64)) < 0.6)
    slush = np.array([0.42, 0.40, 0.37], np.float32)
    snow_rgb = np.where(tracks[:, None], slush, SNOW_RGB)
    surface.albedo[:] = surface.albedo * (1 - cover[:, None]) + snow_rgb * cover[:, None]


def sky_visibility(surface: Surface) -> np.ndarray:
    """Crude ambient occlusion: up-facing surfaces see the whole sky, walls about half of it."""
    return (0.62 + 0.38 * surface.normal[:, 2]).astype(np.float32)


def lamp_light(surface: Surface, lamps: np.ndarray, style: ConditionStyle, lamp_seed: int) -> np.ndarray:
    """Street lamps as downward point lights (no shadows); sodium or LED colour per lamp."""
    light = np.zeros_like(surface.albedo)
    if style.lamps <= 0 or len(lamps) == 0:
        return light
    hit = surface.hit
    for index, lamp in enumerate(lamps):
        to_lamp = lamp[None].astype(np.float32) - surface.position
        dist2 = np.einsum("pk,pk->p", to_lamp, to_lamp)
        direction = to_lamp / np.sqrt(dist2 + 1e-6)[:, None]
        ndl = np.clip(np.einsum("pk,pk->p", surface.normal, direction), 0.0, 1.0)
        downward = np.clip(direction[:, 2], 0.0, 1.0) ** 0.7
        colour = (1.0, 0.62, 0.28) if hash01(lamp_seed, index) < 0.6 else (0.85, 0.9, 1.0)
        light += (style.lamps * ndl * downward / (dist2 + 2.0) * hit)[:, None] * np.asarray(colour, np.float32)
    return light


def car_light(surface: Surface, world_from_car: np.ndarray) -> np.ndarray:
    light = np.zeros_like(surface.albedo)
    rotation, origin = world_from_car[:3, :3], world_from_car[:3, 3]
    for position, direction, colour, intensity, (outer, inner) in _CAR_LIGHTS:
        source = (rotation @ np.asarray(position) + origin).astype(np.float32)
        axis = rotation @ np.asarray(direction)
        axis = (axis / np.linalg.norm(axis)).astype(np.float32)
        to_point = surface.position - source[None]
        dist2 = np.einsum("pk,pk->p", to_point, to_point)
        ray = to_point / np.sqrt(dist2 + 1e-6)[:, None]
        cone = np.clip((ray @ axis - outer) / (inner - outer), 0.0, 1.0)
        ndl = np.clip(-np.einsum("pk,pk->p", surface.normal, ray), 0.0, 1.0)
        light += (intensity * cone * ndl / (dist2 + 1.0) * surface.hit)[:, None] * np.asarray(colour, np.float32)
    return light


def emission(surface: Surface, style: ConditionStyle, condition_seed: int) -> np.ndarray:
    """Lit windows (a random subset per traversal) and glowing lamp heads."""
    out = np.zeros_like(surface.albedo)
    if style.lit_windows > 0:
        windows = (surface.material == Material.WINDOW) | (surface.material == Material.GLASS_WALL)
        wid = surface.window_id[windows]
        lit = hash01(wid, condition_seed) < style.lit_windows
        warmth = hash01(wid, condition_seed, 1)
        colour = np.where((warmth < 0.8)[:, None], np.array([1.0, 0.72, 0.4], np.float32),
                          np.array([0.7, 0.8, 1.0], np.float32))
        strength = (0.35 + 0.9 * hash01(wid, condition_seed, 2)) * lit
        out[windows] = colour * strength[:, None]
    if style.lamps > 0:
        lamp = surface.material == Material.LAMP
        out[lamp] = np.array([1.0, 0.8, 0.55], np.float32) * style.lamps * 0.4
    return out


def glass_reflection(surface: Surface, directions: np.ndarray, sky: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Mirror reflection of the sky in glass and car paint (a cheap environment map)."""
    out = np.zeros_like(surface.albedo)
    for material, reflectance in _GLASS_REFLECTANCE.items():
        sel = np.flatnonzero(surface.material == material)
        if len(sel):
            d, n = directions[sel], surface.normal[sel]
            mirrored = d - 2.0 * np.einsum("pk,pk->p", d, n)[:, None] * n
            out[sel] = reflectance * sky(mirrored)
    return out
