"""``mduit-loc extract``: global descriptors of images into an hloc-style HDF5 file, or into a
kapture folder (``--format kapture``: ``OUT/reconstruction/global_features/NAME/``, see
``mduit_loc.retrieval.kapture_features``) for kapture-localization.

Examples::

    mduit-loc extract --model runs/mduit --db data/robotcar --out db_descriptors.h5
    mduit-loc extract --model netvlad/Pitts30K_struct.mat --images data/robotcar --split test --out q.h5
    mduit-loc extract --model raw-pixels --images my_photos/ --out photos.h5 --fp16
    mduit-loc extract --model runs/mduit --images my_kapture/sensors/records_data --out my_kapture --format kapture

A large map, sharded over processes (GPUs, machines): each describes a share of the batches and rank 0
writes the one HDF5 file, identical to a single process's (``extract.describe_sharded``)::

    torchrun --nproc_per_node 8 -m mduit_loc.cli extract --model runs/mduit --db data/robotcar --out db.h5
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mduit_loc.errors import MduitError
from mduit_loc.retrieval import kapture_features
from mduit_loc.retrieval.cli_common import add_loading_arguments, extract_options, setup_logging
from mduit_loc.retrieval.descriptor_models import load_descriptor
from mduit_loc.retrieval.extract import ExtractOptions, ExtractReport, extract_to_h5, iter_image_batches
from mduit_loc.retrieval.indexing import open_database
from mduit_loc.retrieval.query_inputs import SPLITS, resolve_queries
from mduit_loc.runtime import resolve_device
from mduit_loc.translation.distributed import init_distributed, rank_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="MDUIT or NetVLAD run directory, NetVLAD .mat checkpoint, or raw-pixels[:HxW]; "
                             "an MDUIT run gives z, RUN#content:HxW its content features pooled on an HxW grid "
                             "(keeps the spatial layout; better on low-resolution route data such as Nordland)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", nargs="+", metavar="PATH",
                        help="image files, folders, list files (names relative to --image-root) or a dataset "
                             "folder (its queries)")
    source.add_argument("--db", metavar="DATASET", help="a dataset whose database (map) images to describe")
    parser.add_argument("--out", required=True, type=Path,
                        help="output HDF5 file (hloc global-descriptor layout), or with --format kapture the "
                             "kapture folder (features go to OUT/reconstruction/global_features/NAME/)")
    parser.add_argument("--format", choices=("hloc", "kapture"), default="hloc",
                        help="hloc: one HDF5 file (default); kapture: one .gfeat file per image and "
                             "global_features.txt, as kapture-localization reads them")
    parser.add_argument("--feature-name", help="--format kapture: name of the global features "
                                               "(default: the descriptor's, e.g. mduit, netvlad, raw-pixels)")
    parser.add_argument("--image-root", type=Path, help="root that image names are relative to")
    parser.add_argument("--split", choices=SPLITS, default="all", help="queries of a dataset given as --images")
    parser.add_argument("--fp16", action="store_true", help="store descriptors as float16 (as hloc does)")
    parser.add_argument("--overwrite", action="store_true",
                        help="re-extract images already in the output file (default: skip them)")
    add_loading_arguments(parser)


def _images(args: argparse.Namespace) -> tuple[list[str], list[Path]]:
    if args.db:
        dataset = open_database(args.db, args.image_root)
        names = [image.name for image in dataset.database]
        return names, [dataset.image_path(n) for n in names]
    items = resolve_queries(args.images, args.image_root, args.split)
    return [item.name for item in items], [item.path for item in items]


def run(args: argparse.Namespace) -> int:
    setup_logging()
    names, paths = _images(args)
    if not names:
        raise MduitError("no images to describe")
    if args.format == "kapture" and args.fp16:
        raise MduitError("--fp16 is for HDF5 files; kapture's reader knows float32 but not float16 global features")
    device = resolve_device(args.device)
    context = init_distributed(device)   # under torchrun: one process per GPU (gloo on CPU)
    try:
        if args.format == "kapture" and context.enabled:
            raise MduitError("--format kapture is written by one process; run it without torchrun")
        descriptor = load_descriptor(args.model, rank_device(context, device))
        options = extract_options(args, fp16=args.fp16, overwrite=args.overwrite)
        if args.format == "kapture":
            folder = kapture_features.feature_folder(args.out, args.feature_name or descriptor.name)
            report = extract_to_kapture(descriptor, paths, names, folder, options)
            where = str(folder)
        else:
            report = extract_to_h5(descriptor, paths, names, args.out, options, context=context)
            where = str(args.out)
    finally:
        context.close()
    if not context.is_main:
        return 0
    shards = f" by {context.world_size} processes" if context.enabled else ""
    print(f"{where}: {report.written} descriptor(s) written{shards} ({descriptor.name}, dim {descriptor.dim}), "
          f"{report.already_present} already present, {len(report.failed)} unreadable image(s) skipped")
    for failure in report.failed:
        print(f"  skipped {failure.path}: {failure.reason}")
    return 0


def extract_to_kapture(descriptor, paths: list[Path], names: list[str], folder: Path,
                       options: ExtractOptions) -> ExtractReport:
    """Describe the images into kapture's global-feature folder; images already there (same model)
    are skipped unless ``options.overwrite``."""
    for name in names:
        kapture_features.feature_path(folder, name)  # refuse unusable names before any work
    keep = kapture_features.prepare_folder(folder, folder.name, descriptor.describe_identity(), options.overwrite)
    report = ExtractReport()
    todo = [i for i, name in enumerate(names) if not (keep and kapture_features.has_features(folder, name))]
    report.already_present = len(names) - len(todo)
    for images, indices in iter_image_batches([paths[i] for i in todo], descriptor.image_size, options,
                                              report.failed, "extracting"):
        kapture_features.write_features(folder, [names[todo[i]] for i in indices], descriptor(images).cpu().numpy())
        report.written += len(indices)
    return report
