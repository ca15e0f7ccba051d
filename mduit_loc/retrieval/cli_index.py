"""``mduit-loc index``: describe a map's images (optionally translated) and build a FAISS index.

The map is a dataset with poses (RobotCar Seasons layout, COLMAP model), or any folder of images
(searched recursively) or image list without poses: then queries get ranked pairs and scores (hloc
pairs for matching) and no pose.

Examples::

    mduit-loc index --db photos/ --model raw-pixels --out idx/photos          # no poses: pairs only
    mduit-loc index --db data/robotcar --model runs/mduit --out idx/mduit --translate-db
    mduit-loc index --db my_colmap_map/sparse/0 --image-root my_colmap_map/images --model raw-pixels --out idx/raw
    mduit-loc index --db data/robotcar --model netvlad/Pitts30K_struct.mat --out idx/nv --index-type ivf-pq

A large map: ``torchrun --nproc_per_node N -m mduit_loc.cli index ...`` describes the database sharded
over the N processes (GPUs, machines); rank 0 writes the index, the same as one process's.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mduit_loc.retrieval.api import AppearanceOptions, IndexOptions, build_index
from mduit_loc.retrieval.cli_common import (
    add_fuse_argument,
    add_loading_arguments,
    extract_options,
    positive_int,
    setup_logging,
)
from mduit_loc.retrieval.faiss_index import INDEX_TYPES, IndexParams, load_index
from mduit_loc.retrieval.translated_db import STRATEGIES
from mduit_loc.runtime import resolve_device
from mduit_loc.translation.distributed import init_distributed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, metavar="MAP",
                        help="the map: a RobotCar Seasons folder (real or synthetic) or a COLMAP model folder "
                             "(with poses); or any folder of images (recursive) or an image list file, one name "
                             "per line relative to --image-root (without poses: queries get pairs and scores, "
                             "no pose)")
    parser.add_argument("--model", required=True,
                        help="MDUIT or NetVLAD run directory, NetVLAD .mat checkpoint, or raw-pixels[:HxW]; "
                             "an MDUIT run gives z, RUN#content:HxW its content features pooled on an HxW grid "
                             "(keeps the spatial layout; better on low-resolution route data such as Nordland)")
    parser.add_argument("--out", required=True, type=Path, metavar="INDEX", help="index directory to write")
    parser.add_argument("--image-root", help="image folder of a COLMAP map (default: images/ next to it) or "
                                             "root of the names in an image list (default: the list's folder)")
    group = parser.add_argument_group("index")
    group.add_argument("--index-type", choices=INDEX_TYPES, default="flat",
                       help="flat: exact (default); ivf / ivf-pq: approximate, for large maps (trained)")
    group.add_argument("--nlist", type=positive_int, help="IVF lists (default: ~4 sqrt(vectors))")
    group.add_argument("--pq-m", type=positive_int, help="PQ sub-quantizers; must divide the dimension")
    group.add_argument("--pq-nbits", type=positive_int, default=8, help="bits per PQ code (default: 8)")
    group.add_argument("--nprobe", type=positive_int, help="IVF lists searched per query (default: min(nlist, 32))")
    group = parser.add_argument_group("translated database (the paper's augmentation)")
    group.add_argument("--translate-db", action="store_true",
                       help="also index every database image translated into each target appearance")
    group.add_argument("--translator", help="MDUIT run used to translate (default: --model)")
    group.add_argument("--appearances", choices=STRATEGIES, default="exemplars",
                       help="target appearances: exemplars = N training images per condition (default); "
                            "clusters = k-means centres of appearance filters; domain-means = the mean "
                            "filter per training domain saved with the MDUIT run")
    group.add_argument("--per-condition", type=positive_int, default=1, help="exemplars per condition (default: 1)")
    group.add_argument("--num-clusters", type=positive_int, default=8, help="appearance clusters (default: 8)")
    group.add_argument("--conditions", nargs="+", help="conditions to take appearances from "
                                                       "(default: all but the map's)")
    group.add_argument("--appearance-data", help="dataset to take appearance images from (default: --db)")
    add_fuse_argument(group)
    group.add_argument("--save-translations", action="store_true",
                       help="also write the translated images to INDEX/translations/")
    group.add_argument("--seed", type=int, default=0, help="seed of the appearance choice (default: 0)")
    parser.add_argument("--fp16", action="store_true", help="store HDF5 descriptors as float16")
    parser.add_argument("--overwrite", action="store_true", help="recompute descriptors already stored")
    add_loading_arguments(parser)


def run(args: argparse.Namespace) -> int:
    setup_logging()
    appearances = AppearanceOptions(strategy=args.appearances, per_condition=args.per_condition,
                                    num_clusters=args.num_clusters, conditions=args.conditions,
                                    appearance_data=args.appearance_data, seed=args.seed)
    params = IndexParams(type=args.index_type, nlist=args.nlist, pq_m=args.pq_m, pq_nbits=args.pq_nbits,
                         nprobe=args.nprobe)
    options = IndexOptions(params=params, extract=extract_options(args, fp16=args.fp16, overwrite=args.overwrite),
                           translate_db=args.translate_db, translator=args.translator, appearances=appearances,
                           save_translations=args.save_translations, fuse_translations=args.fuse_translations,
                           image_root=args.image_root,
                           device=resolve_device(args.device))
    context = init_distributed(options.device)   # under torchrun: the descriptors are computed sharded
    try:
        out = build_index(args.db, args.model, args.out, options, context)
    finally:
        context.close()
    if not context.is_main:
        return 0
    loaded = load_index(out)
    manifest, table = loaded.manifest, loaded.table
    counts, translation = manifest["counts"], manifest.get("translation") or {}
    variants = (f"{counts['images']} images, each fused with its {len(translation['appearances'])} translated "
                f"copies at weight {translation['fused_weight']:g}" if "fused_weight" in translation
                else f"{counts['images']} images x {counts['appearances']} appearance(s)")
    print(f"{out}: {manifest['index']['type']} index of {counts['vectors']} vectors ({variants}), "
          f"{manifest['descriptor']['name']} dim {manifest['descriptor']['dim']}"
          + (f"; {counts['failed_images']} unreadable image(s) left out" if counts["failed_images"] else "")
          + ("; the images have no poses: queries get pairs and scores, no pose" if not table.num_posed else ""))
    return 0
