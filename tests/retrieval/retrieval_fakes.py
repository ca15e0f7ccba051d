"""Test doubles for the retrieval tests: a colour descriptor, a fake MDUIT translator, tiny datasets.

``test-color``: the descriptor of an image is its mean RGB colour, L2-normalised — so similarities
of solid-colour images are cosines of their colours and can be computed by hand.
``test-mduit``: an MDUIT look-alike whose appearance filter is the mean colour and whose translation
blends the image halfway towards that colour.
Both work on any device (the suite also runs with CUDA visible): the fake model is moved to the
descriptor's device, and every tensor it makes follows its inputs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mduit_loc.datasets.images import save_image
from mduit_loc.datasets.types import DatabaseImage, Intrinsics, LocalizationDataset, QueryImage
from mduit_loc.poses import Pose
from mduit_loc.retrieval.api import ExtractOptions, IndexOptions, QueryOptions, SearchOptions
from mduit_loc.retrieval.descriptor_models import GlobalDescriptor, ModuleDescriptor, register_descriptor

IMAGE_SIZE = (16, 16)
CPU = torch.device("cpu")
# every device of this machine: tests parametrized with it run on the GPU too where there is one
DEVICES = [CPU] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def quiet(**fields) -> ExtractOptions:
    """Image loading in the test process, without progress bars."""
    return ExtractOptions(num_workers=0, progress=False, **fields)


def index_options(*, on_error: str = "fail", device: torch.device = CPU, **fields) -> IndexOptions:
    return IndexOptions(extract=quiet(on_error=on_error), device=device, **fields)


def query_options(*, top_k: int = 10, per_camera: bool = False, per_location: bool = False, device: torch.device = CPU,
                  **fields) -> QueryOptions:
    search = SearchOptions(k=top_k, per_camera=per_camera, per_location=per_location)
    return QueryOptions(search=search, extract=quiet(), device=device, **fields)


class ColorDescriptor(GlobalDescriptor):
    def __init__(self, device="cpu", checksum="color-v1", dim=3):
        self.name, self.dim, self.image_size = "test-color", dim, IMAGE_SIZE
        self.checksum, self.spec, self.device = checksum, "test-color", torch.device(device)

    def describe(self, images):
        return images.mean(dim=(2, 3))


class FakeTranslator(nn.Module):
    image_size = IMAGE_SIZE
    descriptor_dim = 3
    checksum = "fake-mduit-v1"

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def describe(self, images):
        return images.mean(dim=(2, 3)) * self.scale

    def appearance_filters(self, images):
        return images.mean(dim=(2, 3))

    def translate(self, images, filters):
        return (0.5 * images + 0.5 * filters.to(images.device)[:, :, None, None]).clamp(0, 1)


register_descriptor("test-color", lambda spec, device: ColorDescriptor(device))
register_descriptor("test-color-other", lambda spec, device: ColorDescriptor(device, checksum="color-v2"))
register_descriptor("test-mduit", lambda spec, device: ModuleDescriptor(FakeTranslator().to(device), "mduit", spec,
                                                                         "describe", device))


def solid(color) -> np.ndarray:
    return np.broadcast_to(np.asarray(color, np.uint8), (*IMAGE_SIZE, 3)).copy()


def pose(qvec, t) -> Pose:
    return Pose.from_qvec(qvec, t)


def color_dataset(root: Path, database: list[tuple[str, tuple, Pose, int | None]],
                  queries: list[tuple[str, tuple, int | None]]) -> LocalizationDataset:
    """Solid-colour PNGs; names are ``<condition>/<camera>/<stem>.png``."""
    image_root = root / "images"
    db, qs = [], []
    for name, color, cam_pose, location in database:
        save_image(image_root / name, solid(color))
        db.append(DatabaseImage(name, name.split("/")[1], cam_pose, name.split("/")[0], location))
    for name, color, location in queries:
        save_image(image_root / name, solid(color))
        qs.append(QueryImage(name, name.split("/")[0], name.split("/")[1], location, None, "test"))
    intrinsics = {cam: Intrinsics(20.0, 20.0, 8.0, 8.0, 16, 16) for cam in {d.camera for d in db}}
    return LocalizationDataset(root, image_root, db, qs, intrinsics, {}, kind="memory")
