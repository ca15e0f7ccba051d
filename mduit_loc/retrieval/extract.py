"""Batched descriptor extraction: DataLoader workers decode images while the model runs.

Two outputs: ``compute_descriptors`` returns an in-memory array (queries), ``extract_to_h5`` writes
hloc's global-descriptor layout (databases, ``mduit-loc extract``), skipping images already in the
file unless ``overwrite``. The file is replaced atomically: new descriptors go into a copy that is
renamed over the original only when extraction completes.

Bad images: decoding never raises in a worker (the worker marks the image as failed); the main
process then either re-reads the first failure to raise its precise error (``on_error='fail'``) or
lists every failure with its path and continues (``'skip'``).
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from mduit_loc.datasets.images import ImageListDataset, load_image
from mduit_loc.errors import ConfigMismatchError, MduitError
from mduit_loc.io_utils import atomic_path, link_or_copy
from mduit_loc.output_lock import clean_stale_temporaries
from mduit_loc.retrieval import h5_io
from mduit_loc.runtime import default_num_workers

ON_ERROR_CHOICES = ("fail", "skip")
CHECKSUM_ATTR = "mduit_descriptor_checksum"
NAME_ATTR = "mduit_descriptor_name"


@dataclass(kw_only=True)
class ExtractOptions:
    batch_size: int = 16
    num_workers: int | None = None      # None: runtime.default_num_workers()
    on_error: str = "fail"              # 'fail' | 'skip'
    fp16: bool = False                  # store float16 in HDF5 (hloc's default for global features)
    overwrite: bool = False             # re-extract images already in the HDF5 file
    progress: bool = True

    def __post_init__(self):
        if self.on_error not in ON_ERROR_CHOICES:
            raise MduitError(f"--on-error must be one of {', '.join(ON_ERROR_CHOICES)}, got {self.on_error!r}")
        if self.batch_size < 1:
            raise MduitError(f"batch size must be >= 1, got {self.batch_size}")


@dataclass
class FailedImage:
    path: Path
    reason: str


@dataclass
class ExtractReport:
    written: int = 0
    already_present: int = 0
    failed: list[FailedImage] = field(default_factory=list)


def _reason(path: Path) -> str:
    """Re-read a failed image in the main process to get its exact error message."""
    try:
        load_image(path)
    except MduitError as err:
        return str(err)
    return f"{path}: could not be decoded"


def iter_image_batches(paths: Sequence[Path], size: tuple[int, int], options: ExtractOptions,
                       failed: list[FailedImage], desc: str = "images",
                       ) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Yield (images (B, 3, H, W) in [0, 1], indices into ``paths``) of the readable images.

    Unreadable images are appended to ``failed`` (``skip``) or raise an ``MduitError`` (``fail``).
    """
    workers = default_num_workers() if options.num_workers is None else options.num_workers
    dataset = ImageListDataset(paths, size, on_error="skip")
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=options.batch_size, shuffle=False, num_workers=workers,
        pin_memory=torch.cuda.is_available(), persistent_workers=False)
    progress = tqdm(total=len(paths), desc=desc, unit="img", disable=not options.progress or None,
                    file=sys.stderr, leave=False)
    with progress:
        for images, indices, ok in loader:
            progress.update(len(indices))
            if not bool(ok.all()):
                bad = [paths[int(i)] for i in indices[~ok]]
                if options.on_error == "fail":
                    raise MduitError(f"unreadable image ({_reason(bad[0])}); "
                                     f"{len(bad)} bad image(s) in this batch: {', '.join(map(str, bad[:5]))}. "
                                     "Use --on-error skip to leave such images out")
                failed.extend(FailedImage(p, _reason(p)) for p in bad)
                images, indices = images[ok], indices[ok]
                if len(indices) == 0:
                    continue
            yield images, indices.numpy()


def compute_descriptors(descriptor, paths: Sequence[str | Path], options: ExtractOptions | None = None,
                        desc: str = "describing") -> tuple[np.ndarray, np.ndarray, list[FailedImage]]:
    """(vectors float32 (N, D), ok bool (N,), failures); rows of failed images are zeros."""
    options = options or ExtractOptions()
    files = [Path(p) for p in paths]
    vectors = np.zeros((len(files), descriptor.dim), np.float32)
    ok = np.zeros(len(files), bool)
    failed: list[FailedImage] = []
    for images, indices in iter_image_batches(files, descriptor.image_size, options, failed, desc):
        vectors[indices] = descriptor(images).cpu().numpy()
        ok[indices] = True
    return vectors, ok, failed


def _stored_checksum(path: Path) -> str | None:
    with h5_io.open_h5(path) as handle:
        stored = handle.attrs.get(CHECKSUM_ATTR)
    return None if stored is None else str(stored)


def _reusable(out_path: Path, descriptor, options: ExtractOptions, on_mismatch: str) -> bool:
    """Whether ``out_path`` holds descriptors of this very model that may be kept and appended to."""
    if not out_path.is_file() or options.overwrite:
        return False
    stored = _stored_checksum(out_path)
    if stored is None or stored == descriptor.checksum:
        return True
    if on_mismatch == "replace":
        return False
    raise ConfigMismatchError(f"{out_path} holds descriptors of another model (checksum {stored[:12]}..., "
                              f"this {descriptor.name} model has {descriptor.checksum[:12]}...); "
                              "use --overwrite to replace the file, or another output file")


def extract_to_h5(descriptor, paths: Sequence[str | Path], names: Sequence[str], out_path: str | Path,
                  options: ExtractOptions | None = None, desc: str = "extracting",
                  on_mismatch: str = "error", previous: str | Path | None = None) -> ExtractReport:
    """Describe ``paths`` and store them under ``names`` in ``out_path`` (hloc layout).

    The file records the model checksum (attribute ``mduit_descriptor_checksum``); a file written by
    another model is refused (``on_mismatch='error'``) or started afresh (``'replace'``). Descriptors
    already in ``previous`` (default: ``out_path`` itself; an index passes its committed file while
    it writes into a staging folder) are reused; ``out_path`` is always written when it differs.
    """
    options = options or ExtractOptions()
    out_path = Path(out_path)
    previous = out_path if previous is None else Path(previous)
    clean_stale_temporaries(out_path.parent, names=[out_path.name])   # left by a killed run
    if len(paths) != len(names):
        raise ValueError("paths and names must have the same length")
    report = ExtractReport()
    todo = list(range(len(names)))
    appending = _reusable(previous, descriptor, options, on_mismatch)
    if appending:
        with h5_io.open_h5(previous) as handle:
            todo = [i for i in todo if not h5_io.has_descriptor(handle, names[i])]
        report.already_present = len(names) - len(todo)
    if not todo and previous == out_path:
        return report
    if not todo and _stored_checksum(previous) == descriptor.checksum:
        link_or_copy(previous, out_path)   # nothing new: the staged file is the committed one
        return report
    with atomic_path(out_path) as tmp:
        if appending:
            shutil.copyfile(previous, tmp)
        todo_paths = [Path(paths[i]) for i in todo]
        # The temporary file exists but is empty when there is nothing to append to.
        with h5_io.open_h5(tmp, "a" if appending else "w") as handle:
            handle.attrs[CHECKSUM_ATTR] = descriptor.checksum
            handle.attrs[NAME_ATTR] = descriptor.name
            for images, indices in iter_image_batches(todo_paths, descriptor.image_size, options,
                                                      report.failed, desc):
                vectors = descriptor(images).cpu().numpy()
                h5_io.write_descriptors(handle, [names[todo[i]] for i in indices], vectors,
                                        fp16=options.fp16, overwrite=True)
                report.written += len(indices)
    return report
