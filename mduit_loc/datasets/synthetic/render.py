"""Vectorised ray-quad intersection: primary rays (G-buffer with exact depth), shadow rays and
mirror rays, all as (rays x quads) array operations; no per-pixel Python loops.

Pixel (row i, column j) is the ray through (j + 0.5, i + 0.5) (COLMAP convention: the
projection of a point hit by that ray is exactly the pixel centre), with camera-frame direction
``((j + 0.5 - cx) / fx, (i + 0.5 - cy) / fy, 1)``, so the ray parameter ``t`` is the z-depth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mduit_loc.datasets.synthetic.quads import ALPHA_KINDS, Quads
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.poses import Pose

AlphaTest = Callable[[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
_NEAR = 0.05
_CHUNK = 12288


@dataclass
class Hits:
    index: np.ndarray   # (P,) quad index, -1 where the ray hits nothing
    t: np.ndarray       # (P,) ray parameter (inf where nothing is hit)
    u: np.ndarray       # (P,) quad-local coordinates of the hit, metres
    v: np.ndarray


def pixel_directions(intrinsics: Intrinsics, cam_from_world: Pose) -> np.ndarray:
    """(H*W, 3) world-frame ray directions with unit camera-frame z, row-major pixels."""
    cols = (np.arange(intrinsics.width, dtype=np.float64) + 0.5 - intrinsics.cx) / intrinsics.fx
    rows = (np.arange(intrinsics.height, dtype=np.float64) + 0.5 - intrinsics.cy) / intrinsics.fy
    x, y = np.meshgrid(cols, rows)
    cam = np.stack([x.ravel(), y.ravel(), np.ones(x.size)], axis=1)
    return (cam @ cam_from_world.R).astype(np.float32)  # R^T applied to each row


def cull_to_view(quads: Quads, cam_from_world: Pose, intrinsics: Intrinsics, max_distance: float) -> np.ndarray:
    """Indices of quads that may be visible: near enough and not entirely outside the frustum."""
    corners = cam_from_world.transform(quads.corners().reshape(-1, 3)).reshape(-1, 4, 3)
    near = _distance_to_quads(quads, cam_from_world.center) < max_distance
    z = corners[..., 2]
    in_front = z > _NEAR
    safe_z = np.where(in_front, z, 1.0)
    x = corners[..., 0] / safe_z
    y = corners[..., 1] / safe_z
    x_lo, x_hi = -intrinsics.cx / intrinsics.fx, (intrinsics.width - intrinsics.cx) / intrinsics.fx
    y_lo, y_hi = -intrinsics.cy / intrinsics.fy, (intrinsics.height - intrinsics.cy) / intrinsics.fy
    all_front = in_front.all(axis=1)
    outside = all_front & ((x < x_lo).all(1) | (x > x_hi).all(1) | (y < y_lo).all(1) | (y > y_hi).all(1))
    return np.flatnonzero(near & in_front.any(axis=1) & ~outside)


def cull_by_distance(quads: Quads, point: np.ndarray, max_distance: float) -> np.ndarray:
    return np.flatnonzero(_distance_to_quads(quads, point) < max_distance)


def _distance_to_quads(quads: Quads, point: np.ndarray) -> np.ndarray:
    rel = np.asarray(point, np.float64)[None] - quads.origin
    pu = np.clip(np.einsum("nk,nk->n", rel, quads.axis_u), 0.0, quads.size[:, 0])
    pv = np.clip(np.einsum("nk,nk->n", rel, quads.axis_v), 0.0, quads.size[:, 1])
    closest = quads.origin + quads.axis_u * pu[:, None] + quads.axis_v * pv[:, None]
    return np.linalg.norm(closest - np.asarray(point)[None], axis=1)


Groups = list[tuple[np.ndarray, np.ndarray]]  # (ray indices, candidate quad indices)


def intersect(origins: np.ndarray, directions: np.ndarray, quads: Quads, alpha: AlphaTest | None = None,
              any_hit: bool = False, t_min=_NEAR, groups: Groups | None = None):
    """Nearest hit per ray (``Hits``), or with ``any_hit`` a bool mask of rays that hit anything.

    ``origins``: (3,) shared or (P, 3) per ray; ``directions``: (P, 3); ``t_min``: scalar or (P,).
    ``groups`` restricts each set of rays to its candidate quads (tiles, see ``frustum_groups``);
    by default every ray is tested against every quad.
    """
    n_rays = len(directions)
    index = np.full(n_rays, -1, np.int64)
    t_out = np.full(n_rays, np.inf, np.float32)
    u_out = np.zeros(n_rays, np.float32)
    v_out = np.zeros(n_rays, np.float32)
    blocked = np.zeros(n_rays, bool)
    if len(quads) and n_rays:
        # work relative to a reference point near the rays, so float32 keeps millimetre precision
        shared = np.ndim(origins) == 1
        reference = np.asarray(origins, np.float64) if shared else np.asarray(origins, np.float64).mean(axis=0)
        local = quads.origin - reference[None]
        axes = [quads.normal, quads.axis_u, quads.axis_v]
        offsets = np.stack([np.einsum("nk,nk->n", a, local) for a in axes], axis=1).astype(np.float32)
        axes = [a.astype(np.float32) for a in axes]
        local_rays = None if shared else (np.asarray(origins, np.float64) - reference[None]).astype(np.float32)
        t_min = np.broadcast_to(np.asarray(t_min, np.float32), (n_rays,))
        is_alpha = np.isin(quads.kind, ALPHA_KINDS) if alpha is not None else np.zeros(len(quads), bool)
        if groups is None:
            groups = [(np.arange(n_rays), np.arange(len(quads)))]
        for rays, candidates in groups:
            if len(candidates) == 0 or len(rays) == 0:
                continue
            basis = np.concatenate([a[candidates] for a in axes], axis=0).T          # (3, 3n)
            flat_offsets = offsets[candidates].T.reshape(-1)
            for start in range(0, len(rays), _CHUNK):
                chunk = rays[start:start + _CHUNK]
                proj_o = -flat_offsets[None] if local_rays is None else local_rays[chunk] @ basis - flat_offsets
                valid, t, u, v = _block(directions[chunk] @ basis, proj_o, t_min[chunk], quads, candidates)
                alpha_cols = np.flatnonzero(is_alpha[candidates])
                if len(alpha_cols) and alpha is not None:  # (alpha_cols is empty without an alpha test)
                    _apply_alpha(valid, u, v, quads, candidates, alpha_cols, alpha)
                if any_hit:
                    blocked[chunk] = valid.any(axis=1)
                    continue
                t_valid = np.where(valid, t, np.float32(np.inf))
                best = np.argmin(t_valid, axis=1)
                rows = np.arange(len(chunk))
                t_best = t_valid[rows, best]
                hit = np.isfinite(t_best)
                index[chunk] = np.where(hit, candidates[best], -1)
                t_out[chunk] = t_best
                u_out[chunk] = u[rows, best]
                v_out[chunk] = v[rows, best]
    if any_hit:
        return blocked
    return Hits(index, t_out, u_out, v_out)


def _block(proj_d: np.ndarray, proj_o: np.ndarray, t_min: np.ndarray, quads: Quads, candidates: np.ndarray):
    """Ray-plane parameters and in-rectangle tests for one block of rays x candidate quads."""
    n = len(candidates)
    with np.errstate(divide="ignore", invalid="ignore"):  # rays parallel to a quad give inf/nan: invalid
        t = -proj_o[:, :n] / proj_d[:, :n]
        u = proj_o[:, n:2 * n] + t * proj_d[:, n:2 * n]
        v = proj_o[:, 2 * n:] + t * proj_d[:, 2 * n:]
        size = quads.size[candidates].astype(np.float32)
        valid = (t > t_min[:, None]) & (u >= 0) & (v >= 0) & (u <= size[:, 0]) & (v <= size[:, 1])
    return valid, t, u, v


def _apply_alpha(valid, u, v, quads: Quads, candidates: np.ndarray, alpha_cols: np.ndarray, alpha: AlphaTest) -> None:
    """Clear candidate hits on transparent parts of billboards (evaluated only where needed)."""
    rows, cols = np.nonzero(valid[:, alpha_cols])
    if len(rows) == 0:
        return
    cols = alpha_cols[cols]
    quad = candidates[cols]
    opaque = np.zeros(len(rows), bool)
    kinds = quads.kind[quad]
    for kind in np.unique(kinds):
        sel = kinds == kind
        q = quad[sel]
        opaque[sel] = alpha(int(kind), u[rows[sel], cols[sel]], v[rows[sel], cols[sel]], quads.size[q], quads.param[q])
    valid[rows[~opaque], cols[~opaque]] = False


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                     a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)


def frustum_groups(origin: np.ndarray, directions: np.ndarray, height: int, width: int, quads: Quads,
                   tile: int, ray_mask: np.ndarray | None = None, margin: float = 0.01) -> Groups:
    """Tiles of a pixel grid of rays from one origin, each with the quads inside its frustum.

    A quad is dropped for a tile when all four corners lie outside one of the tile's four side
    planes (spanned by the corner rays, widened by ``margin`` radians).
    """
    grid = directions.reshape(height, width, 3).astype(np.float64)
    r0 = np.arange(0, height, tile)
    c0 = np.arange(0, width, tile)
    r0, c0 = (a.ravel() for a in np.meshgrid(r0, c0, indexing="ij"))
    r1, c1 = np.minimum(r0 + tile, height) - 1, np.minimum(c0 + tile, width) - 1
    ring = np.stack([grid[r0, c0], grid[r0, c1], grid[r1, c1], grid[r1, c0]], axis=1)   # (T, 4, 3)
    centre = grid[(r0 + r1) // 2, (c0 + c1) // 2]                                       # (T, 3)
    normals = _cross(ring, np.roll(ring, -1, axis=1))                                   # (T, 4, 3)
    norms = np.linalg.norm(normals, axis=2, keepdims=True)
    degenerate = norms[..., 0] < 1e-12          # one-pixel-wide tiles: the other planes bound them
    normals = normals / np.maximum(norms, 1e-12)
    normals *= np.where(np.einsum("tpk,tk->tp", normals, centre) < 0, -1.0, 1.0)[..., None]
    corners = quads.corners() - np.asarray(origin, np.float64)[None, None]             # (N, 4, 3)
    corner_norm = np.linalg.norm(corners, axis=2)
    signed = np.einsum("tpk,nck->tpnc", normals, corners)                               # (T, 4, N, 4)
    inside_plane = (signed > -margin * corner_norm[None, None]).any(axis=3) | degenerate[..., None]
    inside = inside_plane.all(axis=1)                                                   # (T, N)
    pixel_ids = np.arange(height * width).reshape(height, width)
    groups = []
    for k in range(len(r0)):
        rays = pixel_ids[r0[k]:r1[k] + 1, c0[k]:c1[k] + 1].ravel()
        if ray_mask is not None:
            rays = rays[ray_mask[rays]]
        if len(rays):
            groups.append((rays, np.flatnonzero(inside[k])))
    return groups


def sweep_groups(origins: np.ndarray, direction: np.ndarray, tile_of_ray: np.ndarray, quads: Quads,
                 max_length: float) -> Groups:
    """Groups of parallel rays (shadow rays) with the quads near their swept capsule."""
    corners = quads.corners()
    centre_q = corners.mean(axis=1)
    radius_q = np.linalg.norm(corners - centre_q[:, None], axis=2).max(axis=1)
    groups = []
    order = np.argsort(tile_of_ray, kind="stable")
    tiles, starts = np.unique(tile_of_ray[order], return_index=True)
    for rays in np.split(order, starts[1:]):
        points = origins[rays].astype(np.float64)
        centre = points.mean(axis=0)
        radius = np.linalg.norm(points - centre, axis=1).max()
        end = centre + np.asarray(direction, np.float64) * max_length
        seg = end - centre
        along = np.clip(((centre_q - centre) @ seg) / (seg @ seg), 0.0, 1.0)
        dist = np.linalg.norm(centre_q - (centre + along[:, None] * seg), axis=1)
        groups.append((rays, np.flatnonzero(dist < radius_q + radius + 0.1)))
    return groups
