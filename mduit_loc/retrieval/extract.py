"""Batched descriptor extraction: DataLoader workers decode images while the model runs.

Two outputs: ``compute_descriptors`` returns an in-memory array (queries), ``extract_to_h5`` writes
hloc's global-descriptor layout (databases, ``mduit-loc extract``), skipping images already in the
file unless ``overwrite``. The file is replaced atomically: new descriptors go into a copy that is
renamed over the original only when extraction completes.

Bad images: decoding never raises in a worker (the worker marks the image as failed); the main
process then either re-reads the first failure to raise its precise error (``on_error='fail'``) or
lists every failure with its path and continues (``'skip'``).

Sharded (``torchrun --nproc_per_node N -m mduit_loc.cli extract ...``, or any caller passing a
``DistContext``): the images are cut into the batches a single process would make, and batch ``b``
is described by rank ``b mod N``. Round by round, every rank's batch is gathered to rank 0, which
alone writes the one output file (atomically, hloc layout) in the single-process order: the same
batches, the same order, the same file content as one process (same kernels and threads). No shared
file system is needed; any rank's failure (a bad image with ``on_error='fail'``, an error writing)
stops every rank with that error and leaves the previous file as it was.
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from mduit_loc.datasets.images import ImageListDataset, load_image
from mduit_loc.errors import ConfigMismatchError, MduitError
from mduit_loc.io_utils import atomic_path, link_or_copy
from mduit_loc.output_lock import clean_stale_temporaries
from mduit_loc.retrieval import h5_io
from mduit_loc.runtime import default_num_workers
from mduit_loc.translation.distributed import DistContext

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
                  on_mismatch: str = "error", previous: str | Path | None = None,
                  context: DistContext | None = None) -> ExtractReport:
    """Describe ``paths`` and store them under ``names`` in ``out_path`` (hloc layout).

    The file records the model checksum (attribute ``mduit_descriptor_checksum``); a file written by
    another model is refused (``on_mismatch='error'``) or started afresh (``'replace'``). Descriptors
    already in ``previous`` (default: ``out_path`` itself; an index passes its committed file while
    it writes into a staging folder) are reused; ``out_path`` is always written when it differs.
    With a ``context`` of several processes, every rank calls this with the same arguments: the
    images are described sharded and rank 0 writes the file (module docstring); every rank returns
    the whole run's report.
    """
    options = options or ExtractOptions()
    out_path = Path(out_path)
    previous = out_path if previous is None else Path(previous)
    if context is not None and context.enabled:
        return _sharded_extract_to_h5(descriptor, paths, names, out_path, options, desc, on_mismatch, previous,
                                      context)
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


# --- sharded over torchrun ranks ----------------------------------------------------------------
def _batches_of_rank(count: int, batch_size: int, rank: int, world_size: int) -> list[list[int]]:
    """The single-process batches (indices into the images) that ``rank`` describes: b = rank mod N."""
    starts = range(0, count, batch_size)
    return [list(range(start, min(start + batch_size, count))) for start in starts][rank::world_size]


def _local_batches(descriptor, paths: list[Path], options: ExtractOptions, failed: list[FailedImage], desc: str,
                   batches: list[list[int]]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(round, global indices, vectors) of this rank's batches; a batch of only unreadable images
    yields nothing (its failures are in ``failed``)."""
    mine = [index for batch in batches for index in batch]
    round_of = {index: number for number, batch in enumerate(batches) for index in batch}
    for images, local in iter_image_batches([paths[i] for i in mine], descriptor.image_size, options, failed, desc):
        indices = np.asarray([mine[i] for i in local], np.int64)
        yield round_of[int(indices[0])], indices, descriptor(images).cpu().numpy()


def describe_sharded(descriptor, paths: Sequence[str | Path], options: ExtractOptions, failed: list[FailedImage],
                     desc: str, context: DistContext, write: Callable[[np.ndarray, np.ndarray], None]) -> None:
    """Describe ``paths`` over ``context``'s ranks; rank 0 calls ``write(indices, vectors)`` per batch in
    the single-process order, and ``failed`` ends up (on every rank) as one process lists it.

    One ``all_gather_object`` per round of N batches (plus one at the end): every rank learns of any
    rank's error in the round it happens and raises it (the failing rank its own exception).
    """
    files = [Path(p) for p in paths]
    rank, world = context.rank, context.world_size
    batches = _batches_of_rank(len(files), options.batch_size, rank, world)
    rounds = -(-len(files) // (options.batch_size * world)) if files else 0
    rounds_of_path: dict[Path, list[int]] = {}
    for number, batch in enumerate(batches):
        for index in batch:
            rounds_of_path.setdefault(files[index], []).append(number)
    local_failed: list[FailedImage] = []
    failed_by_round: dict[int, list[FailedImage]] = {}
    shown = options if context.is_main else replace(options, progress=False)
    stream = _local_batches(descriptor, files, shown, local_failed, desc, batches)
    pending: list[tuple[np.ndarray, np.ndarray]] = []   # rank 0: the last round's batches, to write
    ahead: tuple[int, np.ndarray, np.ndarray] | None = None   # a described batch of a later round
    for number in range(rounds + 1):
        error: Exception | None = None
        payload: tuple[tuple[np.ndarray, np.ndarray] | None, list[FailedImage]] | None = None
        try:
            for indices, vectors in pending:      # rank 0 only
                write(indices, vectors)
            pending = []
            if number < len(batches):
                if ahead is None:   # reads on past batches of unreadable images only
                    ahead = next(stream, None)
                for failure in local_failed:
                    failed_by_round.setdefault(rounds_of_path[failure.path].pop(0), []).append(failure)
                local_failed.clear()
                described = None
                if ahead is not None and ahead[0] == number:
                    described, ahead = (ahead[1], ahead[2]), None
                payload = (described, failed_by_round.pop(number, []))
        except Exception as err:  # noqa: BLE001 - reported to every rank, re-raised below
            error = err
        report = None if error is None else (isinstance(error, MduitError), f"{type(error).__name__}: {error}",
                                             str(error))
        gathered = context.all_gather_object((report, payload))
        if error is not None:
            raise error
        for where, (problem, _) in enumerate(gathered):
            if problem is not None:
                is_ours, described_error, message = problem
                raise MduitError(message if is_ours else f"rank {where} of {world} failed: {described_error}")
        for _, part in gathered:      # rank order: the single-process order of this round's batches
            if part is None:
                continue
            described, part_failed = part
            failed.extend(part_failed)
            if described is not None and context.is_main:
                pending.append(described)


def _sharded_extract_to_h5(descriptor, paths: Sequence[str | Path], names: Sequence[str], out_path: Path,
                           options: ExtractOptions, desc: str, on_mismatch: str, previous: Path,
                           context: DistContext) -> ExtractReport:
    """``extract_to_h5`` over several ranks. Rank 0 alone reads and writes files: it decides what to
    describe (what ``previous`` already holds) and tells the others, which only read the images."""
    if len(paths) != len(names):
        raise ValueError("paths and names must have the same length")
    main = context.is_main
    report = ExtractReport()
    plan: tuple | None = None
    error: Exception | None = None
    if main:
        try:
            clean_stale_temporaries(out_path.parent, names=[out_path.name])   # left by a killed run
            todo = list(range(len(names)))
            appending = _reusable(previous, descriptor, options, on_mismatch)
            if appending:
                with h5_io.open_h5(previous) as handle:
                    todo = [i for i in todo if not h5_io.has_descriptor(handle, names[i])]
            if not todo and previous != out_path and _stored_checksum(previous) == descriptor.checksum:
                link_or_copy(previous, out_path)   # nothing new: the staged file is the committed one
            plan = ("plan", appending, todo)
        except Exception as err:  # noqa: BLE001 - every rank stops with it
            error, plan = err, ("error", isinstance(err, MduitError), f"{type(err).__name__}: {err}", str(err))
    plan = context.all_gather_object(plan)[0]
    if error is not None:
        raise error
    assert plan is not None
    if plan[0] == "error":
        raise MduitError(plan[3] if plan[1] else f"rank 0 failed: {plan[2]}")
    _, appending, todo = plan
    report.already_present = len(names) - len(todo)
    if not todo:
        return report
    todo_paths = [Path(paths[i]) for i in todo]
    written = [0]

    def write_to(handle) -> Callable[[np.ndarray, np.ndarray], None]:
        def write(indices: np.ndarray, vectors: np.ndarray) -> None:
            h5_io.write_descriptors(handle, [names[todo[i]] for i in indices], vectors, fp16=options.fp16,
                                    overwrite=True)
            written[0] += len(indices)
        return write

    try:
        if main:
            with atomic_path(out_path) as tmp:
                if appending:
                    shutil.copyfile(previous, tmp)
                with h5_io.open_h5(tmp, "a" if appending else "w") as handle:
                    handle.attrs[CHECKSUM_ATTR] = descriptor.checksum
                    handle.attrs[NAME_ATTR] = descriptor.name
                    describe_sharded(descriptor, todo_paths, options, report.failed, desc, context,
                                     write_to(handle))
        else:
            describe_sharded(descriptor, todo_paths, options, report.failed, desc, context, lambda i, v: None)
    except Exception as err:  # noqa: BLE001 - every rank reaches the last exchange, then raises
        error = err
    # the last exchange: the file is in place (or rank 0's error, e.g. renaming it, stops every rank)
    final = context.all_gather_object((written[0], None if error is None else str(error)))
    if error is not None:
        raise error
    if final[0][1] is not None:
        raise MduitError(f"rank 0 failed: {final[0][1]}")
    report.written = int(final[0][0])
    return report
