"""Procedural shaders of everything but facades, and the alpha masks of billboards.

Each shader maps quad-local coordinates (u, v in metres) and a per-quad ``param`` to an
albedo and a material id; detail finer than the pixel footprint fades to its mean colour.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mduit_loc.datasets.synthetic.facades import Material
from mduit_loc.datasets.synthetic.noise import detail_fade, fbm, hash01, hash_u32, value_noise
from mduit_loc.datasets.synthetic.quads import Kind

ROAD_MARGIN = 6.0    # no lane markings this close to an intersection


@dataclass(frozen=True)
class Foliage:
    """Tree state of a condition: leaf coverage in [0, 1] and leaf colour."""

    level: float
    rgb: tuple[float, float, float]


def _pick(palette: np.ndarray, keys) -> np.ndarray:
    return palette[(hash_u32(*keys) % np.uint32(len(palette))).astype(np.int64)]


# --- ground -------------------------------------------------------------------------------
def shade_road(u, v, width, length, footprint, street):
    """Asphalt with lane markings, double yellow lines, repair patches and manholes."""
    base = 0.16 + 0.05 * fbm(u, v, street, 0.8, octaves=2) * detail_fade(footprint, 0.3)
    cell_u, cell_v = np.floor(u / 4.0), np.floor(v / 2.5)
    patch = hash01(street, cell_u.astype(np.int64), cell_v.astype(np.int64), 3) < 0.07
    base = np.where(patch, base * np.where(hash01(street, cell_u.astype(np.int64), 5) < 0.5, 0.75, 1.3), base)
    rgb = np.repeat(base[:, None], 3, axis=1) * np.array([1.0, 1.0, 1.04], np.float32)
    material = np.full(len(u), Material.ROAD, np.int16)
    markable = (u > ROAD_MARGIN) & (u < length - ROAD_MARGIN)
    centre = markable & (np.abs(v - width / 2) < 0.07) & ((u % 9.0) < 3.0)
    edge_dist = np.minimum(v, width - v)
    yellow = markable & (((edge_dist > 0.25) & (edge_dist < 0.35)) | ((edge_dist > 0.45) & (edge_dist < 0.55)))
    white_fade = detail_fade(footprint, 0.4)[:, None]
    rgb = np.where(centre[:, None], rgb * (1 - white_fade) + white_fade * 0.85, rgb)
    rgb = np.where(yellow[:, None], rgb * (1 - white_fade) + white_fade * np.array([0.8, 0.62, 0.1]), rgb)
    material[centre | yellow] = Material.MARKING
    mu, mv = np.floor(u / 7.0), np.floor(v / 3.3)
    hole_u = (mu + 0.2 + 0.6 * hash01(street, mu.astype(np.int64), mv.astype(np.int64), 9)) * 7.0
    hole_v = (mv + 0.5) * 3.3
    manhole = (hash01(street, mu.astype(np.int64), mv.astype(np.int64), 11) < 0.12) & \
        ((u - hole_u) ** 2 + (v - hole_v) ** 2 < 0.35 ** 2)
    rgb = np.where(manhole[:, None], np.float32(0.09), rgb)
    return rgb.astype(np.float32), material


_PAVING = np.array([(0.55, 0.54, 0.52), (0.62, 0.58, 0.50), (0.50, 0.36, 0.30), (0.45, 0.46, 0.48)], np.float32)


def shade_pavement(u, v, footprint, street):
    rgb = _pick(_PAVING, (street,)).copy()
    seams = ((u % 0.9) < 0.03) | ((v % 0.9) < 0.03)
    stain = fbm(u, v, street + 101, 2.0, octaves=2)
    rgb *= (0.85 + 0.25 * stain - 0.2 * seams * detail_fade(footprint, 0.9))[:, None]
    return rgb.astype(np.float32), np.full(len(u), Material.PAVEMENT, np.int16)


def shade_simple(kind: int, u, v, size, footprint, param, walls_rgb):
    """Kerbs, ground, alley walls, poles, lamps and sign plates."""
    n = len(u)
    if kind == Kind.KERB:
        return np.full((n, 3), 0.62, np.float32), np.full(n, Material.KERB, np.int16)
    if kind == Kind.GROUND:
        g = 0.22 + 0.08 * fbm(u, v, 77, 3.0, octaves=2)
        albedo = (g[:, None] * np.array([1.0, 0.97, 0.9], np.float32)).astype(np.float32)
        return albedo, np.full(n, Material.GROUND, np.int16)
    if kind == Kind.WALL:
        rgb = walls_rgb * 0.8 * (0.9 + 0.2 * fbm(u, v, param, 2.0, octaves=2))[:, None]
        return rgb.astype(np.float32), np.full(n, Material.WALL, np.int16)
    if kind == Kind.POLE:
        return np.tile(np.array([[0.16, 0.19, 0.17]], np.float32), (n, 1)), np.full(n, Material.METAL, np.int16)
    if kind == Kind.LAMP:
        return np.tile(np.array([[0.25, 0.25, 0.25]], np.float32), (n, 1)), np.full(n, Material.LAMP, np.int16)
    # SIGN: a bordered plate with a coloured disc
    colours = np.array([(0.1, 0.25, 0.7), (0.75, 0.1, 0.1), (0.9, 0.9, 0.9), (0.9, 0.7, 0.1), (0.1, 0.45, 0.2)],
                       np.float32)
    outer, inner = _pick(colours, (param,)), _pick(colours, (param, 1))
    du, dv = u - size[:, 0] / 2, v - size[:, 1] / 2
    disc = du ** 2 + dv ** 2 < (0.3 * size[:, 0]) ** 2
    rgb = np.where(disc[:, None], inner, outer)
    return rgb.astype(np.float32), np.full(n, Material.SIGN_PLATE, np.int16)


# --- trees and pedestrians (alpha-tested) -------------------------------------------------
def _tree_params(param: np.ndarray) -> np.ndarray:
    """(P, 17) uniform numbers per tree (hashed once per distinct tree, then broadcast)."""
    unique, inverse = np.unique(param, return_inverse=True)
    return hash01(unique[:, None], np.arange(17)[None])[inverse.reshape(-1)]


def _branches(u, v, size, trunk_h, params):
    """Distance-based mask of five straight branches from the top of the trunk."""
    cx = size[:, 0] / 2
    mask = np.zeros(len(u), bool)
    for k in range(5):
        angle = np.radians(25 + 130 * params[:, 2 + k])
        length = (size[:, 1] - trunk_h) * (0.45 + 0.45 * params[:, 7 + k])
        dx, dy = np.cos(angle), np.sin(angle)
        pu, pv = u - cx, v - trunk_h * (0.7 + 0.3 * params[:, 12 + k])
        along = np.clip(pu * dx + pv * dy, 0.0, length)
        dist = np.hypot(pu - along * dx, pv - along * dy)
        mask |= dist < 0.07 * (1.0 - along / (length + 1e-6)) + 0.02
    return mask


def tree_mask(u, v, size, param, foliage: Foliage):
    """(opaque, leaves) of tree billboard points; noise is evaluated inside the crown only."""
    params = _tree_params(param)
    trunk_h = 1.6 + 1.2 * params[:, 0]
    trunk_w = 0.09 + 0.08 * params[:, 1]
    cx = size[:, 0] / 2
    trunk = (np.abs(u - cx) < trunk_w) & (v < trunk_h + 0.6 * (size[:, 1] - trunk_h))
    ry = (size[:, 1] - trunk_h) / 2
    ex, ey = (u - cx) / (0.48 * size[:, 0]), (v - trunk_h - ry) / ry
    crown_box = ex ** 2 + ey ** 2 < 1.16 ** 2          # the noisy crown edge never reaches past this
    leaves = np.zeros(len(u), bool)
    opaque = trunk.copy()
    c = np.flatnonzero(crown_box & ~trunk)
    if len(c):
        uc, vc, pc = u[c], v[c], param[c]
        crown = ex[c] ** 2 + ey[c] ** 2 < (0.8 + 0.35 * fbm(uc, vc, pc, 0.9, octaves=2)) ** 2
        if foliage.level > 0:
            leaves[c] = crown & (fbm(uc, vc, pc + 5, 0.35, octaves=2) < 0.25 + 0.65 * foliage.level)
        twigs = crown & (value_noise(uc, vc, pc + 9, 0.12) < 0.16)
        opaque[c] = leaves[c] | twigs | _branches(uc, vc, size[c], trunk_h[c], params[c])
    return opaque, leaves


def shade_tree(u, v, size, param, foliage: Foliage):
    _, leaves = tree_mask(u, v, size, param, foliage)
    bark = np.array([0.20, 0.15, 0.11], np.float32)
    leaf = np.asarray(foliage.rgb, np.float32) * (0.75 + 0.5 * value_noise(u, v, param + 3, 0.5))[:, None]
    rgb = np.where(leaves[:, None], leaf, bark)
    return rgb.astype(np.float32), np.where(leaves, Material.FOLIAGE, Material.BARK).astype(np.int16)


def pedestrian_mask(u, v, size, param):
    w, h = size[:, 0], size[:, 1]
    cu = u - w / 2
    head = cu ** 2 + (v - h + 0.12) ** 2 < 0.11 ** 2
    torso = (np.abs(cu) < 0.2 + 0.04 * hash01(param, 1)) & (v > 0.85) & (v < h - 0.24)
    stride = 0.04 + 0.1 * hash01(param, 2)
    spread = stride * (0.88 - v)
    legs = (v <= 0.88) & ((np.abs(cu - 0.1 - spread) < 0.07) | (np.abs(cu + 0.1 + spread) < 0.07))
    return head | torso | legs


_CLOTHES = np.array([(0.08, 0.08, 0.1), (0.5, 0.1, 0.1), (0.15, 0.2, 0.45), (0.55, 0.5, 0.4), (0.2, 0.35, 0.2),
                     (0.7, 0.7, 0.72), (0.6, 0.4, 0.1)], np.float32)


def shade_pedestrian(u, v, size, param):
    h = size[:, 1]
    coat, legs = _pick(_CLOTHES, (param, 1)), _pick(_CLOTHES, (param, 2)) * 0.6
    skin = np.array([0.62, 0.45, 0.35], np.float32) * (0.5 + 0.5 * hash01(param, 3))[:, None]
    head = v > h - 0.24
    rgb = np.where(head[:, None], skin, np.where((v <= 0.88)[:, None], legs, coat))
    return rgb.astype(np.float32), np.where(head, Material.SKIN, Material.CLOTH).astype(np.int16)


_PAINT = np.array([(0.75, 0.75, 0.78), (0.05, 0.05, 0.06), (0.45, 0.05, 0.05), (0.1, 0.15, 0.4), (0.4, 0.42, 0.45),
                   (0.85, 0.85, 0.82), (0.1, 0.3, 0.15), (0.65, 0.45, 0.1)], np.float32)


def shade_car(u, v, size, normal_z, param):
    """Car body panels: paint, a glass band on the sides, dark wheels."""
    paint = _pick(_PAINT, (param,))
    side = np.abs(normal_z) < 0.5
    h, length = size[:, 1], size[:, 0]
    glass = side & (v > 0.58 * h) & (v < 0.93 * h) & (u > 0.1 * length) & (u < 0.9 * length)
    wheel = side & (length > 2.5) & (((u - 0.8) ** 2 + (v - 0.32) ** 2 < 0.32 ** 2) |
                                     ((u - length + 0.8) ** 2 + (v - 0.32) ** 2 < 0.32 ** 2))
    rgb = np.where(glass[:, None], np.float32(0.07), paint)
    rgb = np.where(wheel[:, None], np.float32(0.04), rgb)
    material = np.where(glass, Material.CAR_GLASS, Material.CAR_PAINT).astype(np.int16)
    return rgb.astype(np.float32), material
