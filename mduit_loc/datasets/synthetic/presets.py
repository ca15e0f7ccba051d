"""Size presets of the synthetic benchmark (``tiny`` for tests, ``demo`` for ``mduit-loc demo``,
``small`` for benchmarks, ``full`` close to RobotCar Seasons' size)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mduit_loc.errors import MduitError


@dataclass(frozen=True)
class SynthPreset:
    """Everything that decides what is rendered; the seed picks the town and the traversals."""

    name: str
    n_locations: int              # RobotCar Seasons has 49
    image_size: int               # square images, pixels
    location_length_m: float      # length of the route stretch of one location
    location_spacing_m: float     # route length between the starts of two locations
    db_spacing_m: float           # frame spacing of the overcast-reference traversal
    query_frames: int             # frames per location per query condition (x3 cameras)
    supersample: int = 1          # render at k x size and box-filter down (anti-aliasing)
    train_fraction: float = 0.3   # share of each condition's frames in robotcar_v2_train.txt
    points_per_image: int = 256   # 3D points from depth per database image (NVM, COLMAP)
    jpeg_quality: int = 92
    max_view_distance_m: float = 120.0
    aligned_poses: int = 300      # database poses rendered under every condition (aligned/; all if fewer)

    def __post_init__(self):
        if self.n_locations < 1:
            raise MduitError(f"synthetic preset {self.name!r}: n_locations must be >= 1, got {self.n_locations}")
        if self.image_size < 16:
            raise MduitError(f"synthetic preset {self.name!r}: image size must be >= 16 px, got {self.image_size}")
        if self.location_length_m > self.location_spacing_m:
            raise MduitError(f"synthetic preset {self.name!r}: locations overlap "
                             f"(length {self.location_length_m} m > spacing {self.location_spacing_m} m)")
        if not 0.0 < self.train_fraction < 1.0:
            raise MduitError(f"synthetic preset {self.name!r}: train_fraction must be in (0, 1)")
        if self.query_frames < 1 or self.db_spacing_m <= 0 or self.supersample < 1:
            raise MduitError(f"synthetic preset {self.name!r}: query_frames, db_spacing_m, supersample "
                             "must be positive")

    @property
    def db_frames_per_location(self) -> int:
        return int(self.location_length_m // self.db_spacing_m) + 1

    def with_overrides(self, **changes) -> "SynthPreset":
        """A copy with some fields changed (e.g. ``size`` from ``--size``, fewer locations in tests)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise MduitError(f"unknown synthetic preset field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, SynthPreset] = {
    "tiny": SynthPreset("tiny", n_locations=6, image_size=112, location_length_m=9.0,
                        location_spacing_m=55.0, db_spacing_m=3.0, query_frames=2, points_per_image=128,
                        aligned_poses=24),
    # The demo's: 31 reference frames per location and camera over 60 m (tiny has 4 over 9 m, too few to
    # tell methods apart: a guess is then within 5 m most of the time).
    "demo": SynthPreset("demo", n_locations=8, image_size=112, location_length_m=60.0,
                        location_spacing_m=90.0, db_spacing_m=2.0, query_frames=5, points_per_image=128,
                        aligned_poses=24),
    # 61 reference frames per location and camera over 120 m: a location-restricted search chooses among
    # a third of RobotCar Seasons' ~180 candidates, and a guess is within 5 m about 8 % of the time.
    "small": SynthPreset("small", n_locations=18, image_size=224, location_length_m=120.0,
                         location_spacing_m=150.0, db_spacing_m=2.0, query_frames=6),
    # 181 reference frames per location and camera, 49 locations: RobotCar Seasons' ~26,000 reference images.
    "full": SynthPreset("full", n_locations=49, image_size=1024, location_length_m=180.0,
                        location_spacing_m=220.0, db_spacing_m=1.0, query_frames=9, supersample=1,
                        points_per_image=512),
}


def get_preset(name: str, **overrides) -> SynthPreset:
    if name not in PRESETS:
        raise MduitError(f"unknown synthetic preset {name!r}; expected one of {', '.join(PRESETS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return PRESETS[name].with_overrides(**overrides) if overrides else PRESETS[name]
