"""Rendering one camera image of one frame under its traversal's condition.

Pipeline: primary rays -> surfaces (albedo, material) -> snow / wetness -> lighting (ambient,
sun with shadow rays, lamps, car lights, lit windows, glass) -> wet-ground mirror rays -> sky
and fog -> anti-aliasing -> bloom, rain, snow, lens drops, blur -> tone mapping -> noise.
Night, rain and snow change *where* light is (lamps, lit windows, reflections, snow on
up-facing surfaces, shadows), which no global colour transform can undo.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mduit_loc.datasets.layout import CAMERAS, REFERENCE_CONDITION
from mduit_loc.datasets.synthetic import effects, lighting
from mduit_loc.datasets.synthetic.conditions import CONDITION_INDEX, STYLES, ConditionStyle
from mduit_loc.datasets.synthetic.noise import fbm, rng_for
from mduit_loc.datasets.synthetic.quads import GROUND_KINDS, Kind, Quads
from mduit_loc.datasets.synthetic.render import (
    Hits,
    cull_by_distance,
    cull_to_view,
    frustum_groups,
    intersect,
    pixel_directions,
    sweep_groups,
)
from mduit_loc.datasets.synthetic.surface import Surface, alpha_test, surface_at
from mduit_loc.datasets.synthetic.traversals import Frame, Traversal, intrinsics_for
from mduit_loc.datasets.synthetic.world import World


@dataclass
class Scene:
    """The static town plus one traversal's transient objects, and that traversal's lighting."""

    world: World
    traversal: Traversal
    quads: Quads = field(init=False)

    def __post_init__(self):
        self.quads = Quads.concat([self.world.quads, self.traversal.transients])

    @property
    def style(self) -> ConditionStyle:
        return STYLES[self.traversal.condition]

    @property
    def condition_seed(self) -> int:
        return self.world.seed * 31 + CONDITION_INDEX[self.traversal.condition]

    def sun_direction(self) -> np.ndarray | None:
        if self.style.sun is None:
            return None
        return lighting.sun_direction(self.style, self.traversal.sun_azimuth)

    def sky(self, directions: np.ndarray) -> np.ndarray:
        return lighting.sky_colour(directions, self.style, self.sun_direction(), self.condition_seed)


def _shade(scene: Scene, surface: Surface, directions: np.ndarray, frame: Frame, lamps: np.ndarray,
           shadow_quads: Quads | None, tile_of_ray: np.ndarray | None = None) -> np.ndarray:
    """Linear radiance of the hit surfaces (without reflections, sky or fog)."""
    style = scene.style
    radiance = surface.albedo * np.asarray(style.ambient, np.float32) * lighting.sky_visibility(surface)[:, None]
    sun = scene.sun_direction()
    if sun is not None:
        ndl = np.clip(surface.normal @ sun, 0.0, 1.0) * surface.hit
        lit = np.flatnonzero(ndl > 0)
        if shadow_quads is not None and tile_of_ray is not None and len(lit):  # (given together)
            origins = surface.position[lit] + surface.normal[lit] * 0.03
            # shadow rays stop mattering above the tallest building (or after 70 m at a low sun)
            reach = min(70.0, 25.0 / max(float(sun[2]), 1e-3))
            groups = sweep_groups(origins, sun, tile_of_ray[lit], shadow_quads, reach)
            blocked = intersect(origins, np.broadcast_to(sun, (len(lit), 3)).astype(np.float32), shadow_quads,
                                alpha_test(style.foliage), any_hit=True, t_min=0.01, groups=groups)
            ndl[lit[blocked]] = 0.0
        radiance += surface.albedo * ndl[:, None] * np.asarray(style.sun, np.float32)
    light = lighting.lamp_light(surface, lamps, style, scene.world.seed)
    if style.car_lights:
        light += lighting.car_light(surface, frame.world_from_car)
    radiance += surface.albedo * light
    radiance += lighting.emission(surface, style, scene.condition_seed)
    radiance += lighting.glass_reflection(surface, directions, scene.sky)
    return radiance


def _tile(size: int) -> int:
    """Tile edge in pixels: small enough to cull well, large enough to amortise Python overhead."""
    return max(12, size // 7)


def _wet_reflections(scene: Scene, surface: Surface, directions: np.ndarray, radiance: np.ndarray,
                     quads: Quads, frame: Frame, lamps: np.ndarray, pixel_angle: float,
                     camera_centre: np.ndarray) -> np.ndarray:
    """Mirror rays from wet ground: puddles reflect facades, lit windows, lamps and the sky."""
    style = scene.style
    ground = np.flatnonzero(np.isin(surface.kind, GROUND_KINDS))
    if style.wet <= 0 or len(ground) == 0:
        return radiance
    position = surface.position[ground]
    # mirror rays are the rays of the camera mirrored in the ground plane, starting at the ground
    size = int(round(np.sqrt(len(directions))))
    mirrored_all = directions * np.array([1.0, 1.0, -1.0], np.float32)
    ripple = (fbm(position[:, 0], position[:, 1], scene.condition_seed + 7, 0.4, octaves=2) - 0.5) * 0.05
    mirrored_all[ground, 0] += ripple
    mirror_origin = camera_centre * np.array([1.0, 1.0, -1.0])
    t_ground = np.zeros(len(directions), np.float32)
    t_ground[ground] = surface.distance[ground] / np.linalg.norm(directions[ground], axis=1) + 0.02
    mask = np.zeros(len(directions), bool)
    mask[ground] = True
    groups = frustum_groups(mirror_origin, mirrored_all, size, size, quads, _tile(size), mask, margin=0.05)
    hits = intersect(mirror_origin, mirrored_all, quads, alpha_test(style.foliage), t_min=t_ground, groups=groups)
    hits = Hits(hits.index[ground], hits.t[ground], hits.u[ground], hits.v[ground])
    mirrored = mirrored_all[ground]
    reflected = surface_at(hits, quads, scene.world, mirror_origin, mirrored, pixel_angle * 2, style.foliage)
    d = directions[ground] / np.linalg.norm(directions[ground], axis=1, keepdims=True)
    colour = _shade(scene, reflected, mirrored, frame, lamps, None)
    colour = np.where(reflected.hit[:, None], colour, scene.sky(mirrored))
    puddle = np.clip(fbm(position[:, 0], position[:, 1], scene.condition_seed, 2.5, octaves=3) * 3.0 - 1.2, 0.0, 1.0)
    fresnel = 0.05 + 0.95 * (1.0 - np.abs(d[:, 2])) ** 5
    reflectance = style.wet * (0.25 + 0.75 * puddle) * np.clip(fresnel * 1.6, 0.0, 1.0)
    out = radiance.copy()
    out[ground] = radiance[ground] * (1 - 0.5 * reflectance[:, None]) + reflectance[:, None] * colour
    return out


@dataclass
class PrimaryRays:
    """The camera rays of every pixel (row-major) and what they hit first."""

    origin: np.ndarray       # (3,) camera centre, world frame
    directions: np.ndarray   # (H*W, 3) world directions with unit camera-frame z
    view: Quads              # the quads that survived culling (``hits.index`` indexes them)
    hits: Hits


def primary_rays(scene: Scene, frame: Frame, camera: str, size: int, max_distance: float) -> PrimaryRays:
    intrinsics = intrinsics_for(camera, size)
    pose = frame.camera_pose(camera)
    directions = pixel_directions(intrinsics, pose)
    view = scene.quads.subset(cull_to_view(scene.quads, pose, intrinsics, max_distance))
    hits = intersect(pose.center, directions, view, alpha_test(scene.style.foliage),
                     groups=frustum_groups(pose.center, directions, size, size, view, _tile(size)))
    return PrimaryRays(pose.center, directions, view, hits)


def depth_map(scene: Scene, frame: Frame, camera: str, size: int, max_distance: float = 120.0) -> np.ndarray:
    """(size, size) float32 z-depth in metres along the camera axis (inf where the sky is seen).

    Pixel (row i, column j) back-projects to ``depth * ((j + 0.5 - cx) / fx, (i + 0.5 - cy) / fy, 1)``
    in the camera frame, with the intrinsics written for ``size`` (``render`` module convention).
    """
    return primary_rays(scene, frame, camera, size, max_distance).hits.t.reshape(size, size).copy()


def render_linear(scene: Scene, frame: Frame, camera: str, size: int, max_distance: float) -> np.ndarray:
    """(size, size, 3) linear radiance (before image-space effects)."""
    rays = primary_rays(scene, frame, camera, size, max_distance)
    origin, directions, view, hits = rays.origin, rays.directions, rays.view, rays.hits
    style = scene.style
    tile = _tile(size)
    pixel_angle = 1.0 / intrinsics_for(camera, size).fx
    surface = surface_at(hits, view, scene.world, origin, directions, pixel_angle, style.foliage)
    lighting.apply_snow(surface, hits.u, hits.v, style, scene.condition_seed)
    if style.wet > 0:
        wet_ground = np.isin(surface.kind, GROUND_KINDS) | (surface.kind == Kind.KERB)
        surface.albedo[wet_ground] *= np.float32(1.0 - 0.45 * style.wet)
    nearby = scene.quads.subset(cull_by_distance(scene.quads, origin, 90.0)) if (style.sun or style.wet) else None
    lamps = scene.world.lamps[np.linalg.norm(scene.world.lamps - origin[None], axis=1) < 60.0] if style.lamps else \
        np.zeros((0, 3))
    rows = np.arange(size * size) // size
    tile_of_ray = (rows // tile) * size + (np.arange(size * size) % size) // tile
    radiance = _shade(scene, surface, directions, frame, lamps, nearby, tile_of_ray)
    if style.wet > 0 and nearby is not None:  # (wet: nearby is set)
        radiance = _wet_reflections(scene, surface, directions, radiance, nearby, frame, lamps, pixel_angle, origin)
    radiance = np.where(surface.hit[:, None], radiance, scene.sky(directions))
    fog = 1.0 - np.exp(-style.fog_density * np.where(surface.hit, surface.distance, 400.0))
    radiance = radiance * (1 - fog[:, None]) + fog[:, None] * np.asarray(style.fog_rgb, np.float32)
    return radiance.reshape(size, size, 3).astype(np.float32)


def render_view(scene: Scene, frame: Frame, camera: str, size: int, supersample: int = 1,
                max_distance: float = 120.0) -> np.ndarray:
    """The final uint8 (size, size, 3) image of one camera."""
    style = scene.style
    image = effects.downsample(render_linear(scene, frame, camera, size * supersample, max_distance), supersample)
    rng = rng_for(scene.world.seed, 500, CONDITION_INDEX[frame.condition], frame.index, CAMERAS.index(camera))
    image = effects.bloom(image, style.bloom)
    image = effects.rain_streaks(image, rng, int(style.streaks * (size / 256) ** 2), 0.25 if style.lamps else 0.3)
    image = effects.snow_flakes(image, rng, style.flakes)
    image = effects.droplets(image, rng, style.droplets)
    image = effects.blur(image, style.blur)
    if frame.condition != REFERENCE_CONDITION:
        image = effects.auto_exposure_jitter(image, rng)
    display = effects.tone_map(image, style)
    display = effects.sensor_noise(display, rng, style.noise)
    return effects.to_uint8(display)
