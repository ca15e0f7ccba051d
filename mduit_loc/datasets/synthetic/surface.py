"""From ray hits to surface attributes: world position, normal, albedo, material, window id.

Shaders run once per quad kind on the pixels of that kind (vectorised), never per pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mduit_loc.datasets.synthetic import materials
from mduit_loc.datasets.synthetic.facades import Material, shade_facades
from mduit_loc.datasets.synthetic.materials import Foliage
from mduit_loc.datasets.synthetic.quads import Kind, Quads
from mduit_loc.datasets.synthetic.render import Hits
from mduit_loc.datasets.synthetic.world import World


@dataclass
class Surface:
    hit: np.ndarray        # (P,) bool
    kind: np.ndarray       # (P,) quad kind, -1 for sky
    position: np.ndarray   # (P, 3) float32 world (undefined where not hit)
    normal: np.ndarray     # (P, 3) float32, facing the incoming ray
    distance: np.ndarray   # (P,) float32 Euclidean distance along the ray (inf for sky)
    albedo: np.ndarray     # (P, 3) float32
    material: np.ndarray   # (P,) int16
    window_id: np.ndarray  # (P,) int64 (0 where not a window)
    quad_param: np.ndarray  # (P,) int64 param of the hit quad (lamp index, ...)


def alpha_test(foliage: Foliage):
    """The alpha test of billboards for ``render.intersect`` under a condition's foliage."""
    def test(kind: int, u, v, size, param):
        if kind == Kind.TREE:
            return materials.tree_mask(u, v, size, param, foliage)[0]
        return materials.pedestrian_mask(u, v, size, param)
    return test


def surface_at(hits: Hits, quads: Quads, world: World, origins: np.ndarray, directions: np.ndarray,
               pixel_angle: float, foliage: Foliage) -> Surface:
    """Attributes of the hits of rays ``origins + t * directions`` (``pixel_angle``: radians per pixel)."""
    n = len(hits.index)
    hit = hits.index >= 0
    q = np.where(hit, hits.index, 0)
    kind = np.where(hit, quads.kind[q], -1).astype(np.int16)
    t = np.where(hit, hits.t, 0.0).astype(np.float32)
    origins = np.broadcast_to(np.asarray(origins, np.float64), directions.shape)
    position = (origins + directions.astype(np.float64) * t[:, None]).astype(np.float32)
    ray_length = np.linalg.norm(directions, axis=1)
    distance = np.where(hit, t * ray_length, np.inf).astype(np.float32)
    normal = quads.normal[q].astype(np.float32)
    facing = np.einsum("pk,pk->p", normal, directions) > 0
    normal[facing] *= -1
    cos_incidence = np.abs(np.einsum("pk,pk->p", normal, directions)) / ray_length
    footprint = distance * pixel_angle / np.maximum(cos_incidence, 0.15)

    albedo = np.zeros((n, 3), np.float32)
    material = np.full(n, Material.SKY, np.int16)
    window_id = np.zeros(n, np.int64)
    size = quads.size[q].astype(np.float32)
    param = quads.param[q]
    for kind_value in np.unique(kind[hit]):
        sel = np.flatnonzero(kind == kind_value)
        u, v, fp, sz, pr = hits.u[sel], hits.v[sel], footprint[sel], size[sel], param[sel]
        if kind_value == Kind.FACADE:
            rgb, mat, wid = shade_facades(u, v, sz[:, 0], sz[:, 1], fp, world.facades.take(pr))
            window_id[sel] = wid
        elif kind_value == Kind.ROAD:
            rgb, mat = materials.shade_road(u, v, sz[:, 1], sz[:, 0], fp, pr)
        elif kind_value == Kind.PAVEMENT:
            rgb, mat = materials.shade_pavement(u, v, fp, pr)
        elif kind_value == Kind.TREE:
            rgb, mat = materials.shade_tree(u, v, sz, pr, foliage)
        elif kind_value == Kind.PEDESTRIAN:
            rgb, mat = materials.shade_pedestrian(u, v, sz, pr)
        elif kind_value == Kind.CAR:
            rgb, mat = materials.shade_car(u, v, sz, normal[sel, 2], pr)
        else:
            walls = world.facades.wall_rgb[np.clip(pr, 0, len(world.facades) - 1)]
            rgb, mat = materials.shade_simple(int(kind_value), u, v, sz, fp, pr, walls)
        albedo[sel] = np.clip(rgb, 0.0, 1.0) ** np.float32(2.2)  # palettes are display colours; shade in linear light
        material[sel] = mat
    return Surface(hit, kind, position, normal, distance, albedo, material, window_id, param)
