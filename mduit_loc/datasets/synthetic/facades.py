"""Building facades: seeded parameters per building and the procedural facade shader.

Every facade differs in material (brick, plaster, glass curtain wall, concrete panels), colour,
storey height, window grid, ledges, doors and shop signs made of random glyph blocks, so that
places are distinguishable; the shader also reports per-pixel materials (window, ledge, sign,
...) and window ids that the condition effects use (lit windows, snow on ledges).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from mduit_loc.datasets.synthetic.noise import detail_fade, fbm, hash01, hash_u32


class Material:
    WALL, WINDOW, FRAME, LEDGE, SIGN, DOOR, GLASS_WALL = 0, 1, 2, 3, 4, 5, 6
    ROAD, MARKING, PAVEMENT, KERB, GROUND = 10, 11, 12, 13, 14
    METAL, LAMP, SIGN_PLATE, BARK, FOLIAGE, CAR_PAINT, CAR_GLASS, CLOTH, SKIN = 20, 21, 22, 23, 24, 25, 26, 27, 28
    SKY = 99


BRICK, PLASTER, GLASS, PANELS = 0, 1, 2, 3

_WALL_PALETTE = {
    BRICK: [(0.45, 0.20, 0.14), (0.55, 0.28, 0.18), (0.62, 0.46, 0.30), (0.38, 0.18, 0.15), (0.70, 0.58, 0.40)],
    PLASTER: [(0.85, 0.80, 0.68), (0.92, 0.90, 0.86), (0.62, 0.72, 0.80), (0.84, 0.62, 0.60), (0.70, 0.78, 0.62),
              (0.90, 0.78, 0.45), (0.55, 0.55, 0.58), (0.78, 0.50, 0.35)],
    GLASS: [(0.30, 0.42, 0.48), (0.22, 0.30, 0.36), (0.35, 0.45, 0.40)],
    PANELS: [(0.66, 0.64, 0.60), (0.52, 0.52, 0.54), (0.74, 0.68, 0.56)],
}
_SIGN_PALETTE = [(0.70, 0.08, 0.08), (0.08, 0.20, 0.55), (0.05, 0.40, 0.18), (0.10, 0.10, 0.10),
                 (0.85, 0.65, 0.05), (0.55, 0.10, 0.45), (0.90, 0.90, 0.88)]
_N_GLYPHS = 48
_GLYPHS = (np.random.default_rng(1234).random((_N_GLYPHS, 5, 4)) < 0.55)  # 5 rows x 4 columns of blocks


@dataclass
class FacadeTable:
    """One row per building facade (arrays indexed by the facade quads' ``param``)."""

    style: np.ndarray
    wall_rgb: np.ndarray
    trim_rgb: np.ndarray
    glass_rgb: np.ndarray
    sign_rgb: np.ndarray
    glyph_rgb: np.ndarray
    door_rgb: np.ndarray
    floor_h: np.ndarray
    ground_h: np.ndarray
    bay_w: np.ndarray
    win_w: np.ndarray
    win_h: np.ndarray
    sill: np.ndarray
    has_ledges: np.ndarray
    has_shop: np.ndarray
    door_u: np.ndarray
    seed: np.ndarray

    def __len__(self) -> int:
        return len(self.style)

    def take(self, index: np.ndarray) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name)[index] for f in fields(self)}


def sample_facades(rng: np.random.Generator, count: int) -> FacadeTable:
    style = rng.choice([BRICK, PLASTER, GLASS, PANELS], size=count, p=[0.38, 0.37, 0.1, 0.15])
    wall = np.array([_WALL_PALETTE[s][rng.integers(len(_WALL_PALETTE[s]))] for s in style], np.float32)
    wall *= rng.uniform(0.85, 1.12, size=(count, 1)).astype(np.float32)
    trim = np.where(rng.random((count, 1)) < 0.6, np.float32(0.85), wall * 0.7).astype(np.float32)
    trim = trim * rng.uniform(0.8, 1.05, size=(count, 3)).astype(np.float32)
    glass = (np.array([0.10, 0.13, 0.16], np.float32) * rng.uniform(0.6, 1.4, size=(count, 3))).astype(np.float32)
    sign = np.array(_SIGN_PALETTE, np.float32)[rng.integers(len(_SIGN_PALETTE), size=count)]
    glyph = np.where(sign.mean(axis=1, keepdims=True) > 0.5, np.float32(0.08), np.float32(0.95)).repeat(3, axis=1)
    glyph = np.where(rng.random((count, 1)) < 0.25, np.array([[0.95, 0.85, 0.2]], np.float32), glyph)
    door = np.array([(0.30, 0.16, 0.08), (0.08, 0.10, 0.25), (0.06, 0.22, 0.12), (0.12, 0.12, 0.12),
                     (0.55, 0.08, 0.08)], np.float32)[rng.integers(5, size=count)]
    floor_h = rng.uniform(2.9, 3.6, count)
    return FacadeTable(
        style=style.astype(np.int64), wall_rgb=wall, trim_rgb=trim.astype(np.float32), glass_rgb=glass,
        sign_rgb=sign, glyph_rgb=glyph.astype(np.float32), door_rgb=door,
        floor_h=floor_h.astype(np.float32), ground_h=(floor_h + rng.uniform(0.3, 1.2, count)).astype(np.float32),
        bay_w=rng.uniform(2.2, 4.2, count).astype(np.float32), win_w=rng.uniform(0.8, 1.7, count).astype(np.float32),
        win_h=rng.uniform(1.2, 2.0, count).astype(np.float32), sill=rng.uniform(0.6, 1.0, count).astype(np.float32),
        has_ledges=rng.random(count) < 0.55, has_shop=rng.random(count) < 0.45,
        door_u=rng.uniform(0.1, 0.9, count).astype(np.float32),
        seed=rng.integers(0, 2**31 - 1, size=count),
    )


def _rect(u, v, u0, u1, v0, v1):
    return (u >= u0) & (u < u1) & (v >= v0) & (v < v1)


def _glyph_bits(seed, cell, col, row):
    glyph = (hash_u32(seed, cell) % np.uint32(_N_GLYPHS)).astype(np.int64)
    return _GLYPHS[glyph, np.clip(row, 0, 4), np.clip(col, 0, 3)]


def shade_facades(u, v, width, height, footprint, p: dict[str, np.ndarray]):
    """Albedo (P, 3), material (P,), window id (P,) of facade pixels.

    ``p``: the FacadeTable rows of each pixel's facade (see ``FacadeTable.take``).
    """
    n = len(u)
    rgb = p["wall_rgb"].copy()
    material = np.full(n, Material.WALL, np.int16)
    window_id = np.zeros(n, np.int64)
    seed = p["seed"]

    # wall texture: bricks / plaster blotches / panel seams, faded by the pixel footprint
    style = p["style"]
    brick = style == BRICK
    if brick.any():
        row = np.floor(v / 0.075)
        offset = np.where(row % 2 == 0, 0.0, 0.11)
        col = np.floor((u + offset) / 0.225)
        mortar = ((v % 0.075) < 0.012) | (((u + offset) % 0.225) < 0.012)
        jitter = (hash01(seed, row.astype(np.int64), col.astype(np.int64)) - 0.5) * 0.25
        fade = detail_fade(footprint, 0.075)
        # far away the bricks average out to their colour plus the mortar's share (about 7 %)
        shade = 1.0 + fade * np.where(mortar, 0.35, jitter) + (1.0 - fade) * 0.07
        rgb[brick] *= shade[brick, None]
    plaster = style == PLASTER
    if plaster.any():
        blotch = fbm(u[plaster], v[plaster], seed[plaster], 1.5, octaves=2)
        rgb[plaster] *= (0.9 + 0.2 * blotch)[:, None]
    panels = style == PANELS
    if panels.any():
        seam = ((u % 1.5) < 0.03) | ((v % 1.2) < 0.03)
        rgb[panels] *= (1.0 - 0.25 * seam * detail_fade(footprint, 1.2))[panels, None]

    ground_h, floor_h = p["ground_h"], p["floor_h"]
    upper = v >= ground_h
    floor = np.where(upper, 1 + np.floor((v - ground_h) / floor_h), 0).astype(np.int64)
    v_in = np.where(upper, (v - ground_h) % floor_h, v)
    n_bays = np.maximum(1, np.floor(width / p["bay_w"]))
    bay_w = width / n_bays
    bay = np.floor(u / bay_w).astype(np.int64)
    u_in = u - (bay + 0.5) * bay_w
    cornice = v > height - 0.45

    # upper floors: window grid with frames, mullions and sills; or a glass curtain wall
    half_w = np.minimum(p["win_w"], bay_w - 0.5) / 2
    win = upper & ~cornice & _rect(u_in, v_in, -half_w, half_w, p["sill"], p["sill"] + p["win_h"])
    frame = upper & ~cornice & ~win & _rect(u_in, v_in, -half_w - 0.08, half_w + 0.08,
                                            p["sill"] - 0.12, p["sill"] + p["win_h"] + 0.08)
    mullion = win & ((np.abs(u_in) < 0.035) | (np.abs(v_in - p["sill"] - 0.62 * p["win_h"]) < 0.035))
    mullion &= detail_fade(footprint, 0.25) > 0.5
    glass_wall = (style == GLASS) & upper & ~cornice
    gw_frame = glass_wall & (((u % 1.5) < 0.08) | ((v_in % floor_h) < 0.35))
    win = np.where(glass_wall, ~gw_frame, win)
    frame = np.where(glass_wall, gw_frame, frame | mullion)
    win &= ~mullion
    ledge = upper & p["has_ledges"] & (v_in < 0.22) & ~glass_wall
    ledge |= cornice

    # ground floor: shop front with a glyph sign, or windows and a door
    shop = ~upper & p["has_shop"]
    sign_v0, sign_v1 = ground_h - 1.0, ground_h - 0.3
    sign = shop & (v >= sign_v0) & (v < sign_v1) & (u > 0.4) & (u < width - 0.4)
    cell = np.floor((u - 0.6) / 0.5).astype(np.int64)
    col = np.floor(((u - 0.6) % 0.5) / 0.1).astype(np.int64)
    row = np.floor((v - sign_v0 - 0.12) / 0.09).astype(np.int64)
    n_chars = (hash_u32(seed, 7) % np.uint32(6)).astype(np.int64) + 4
    in_text = sign & (row >= 0) & (row < 5) & (col < 4) & (cell >= 0) & (cell < n_chars) & (u < width - 0.6)
    glyph = in_text & _glyph_bits(seed, cell, col, row)
    glyph_fade = detail_fade(footprint, 0.18)
    pillar = (u % 3.6) < 0.45
    shop_glass = shop & ~pillar & (v >= 0.45) & (v < sign_v0 - 0.15) & ~sign
    door_w = 1.2
    door_u0 = p["door_u"] * np.maximum(width - door_w, 0.0)
    door = ~upper & _rect(u, v, door_u0, door_u0 + door_w, 0.0, np.minimum(2.3, ground_h - 0.2))
    plain_ground = ~upper & ~p["has_shop"] & ~door
    gwin = plain_ground & _rect(u_in, v, -half_w, half_w, 0.9, np.minimum(0.9 + p["win_h"], ground_h - 0.4))

    rgb = np.where((frame | ledge)[:, None], p["trim_rgb"], rgb)
    material[frame] = Material.FRAME
    material[ledge] = Material.LEDGE
    windows = (win | gwin | shop_glass) & ~door
    rgb = np.where(windows[:, None], p["glass_rgb"], rgb)
    material[windows] = Material.WINDOW
    material[glass_wall & windows] = Material.GLASS_WALL
    window_id = np.where(windows, (floor * 4099 + bay * 131 + (shop_glass * 17)), 0) + seed * 7919
    rgb = np.where(sign[:, None], p["sign_rgb"] * (1 - glyph_fade * glyph)[:, None]
                   + p["glyph_rgb"] * (glyph_fade * glyph)[:, None]
                   + (1 - glyph_fade)[:, None] * 0.25 * in_text[:, None] * (p["glyph_rgb"] - p["sign_rgb"]), rgb)
    material[sign] = Material.SIGN
    rgb = np.where(door[:, None], p["door_rgb"], rgb)
    material[door] = Material.DOOR
    return rgb.astype(np.float32), material, window_id
