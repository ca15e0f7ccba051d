"""``mduit-loc query``: retrieve and localize query images against an index.

Against an index of images without poses (``mduit-loc index --db photos/``) every query gets ranked
pairs and scores (``pairs.txt``: hloc pairs for matching) and no pose; ``summary.json`` counts the
queries without a pose and says why.

Examples::

    mduit-loc query --index idx/photos --images queries/ --out res/          # res/pairs.txt for matching
    mduit-loc query --index idx/mduit --images data/robotcar --split test --per-camera --per-location --out res/
    mduit-loc query --index idx/raw --images photos/ --top-k 20 --pose weighted --out res/
    mduit-loc query --index idx/mduit --images night_list.txt --image-root data/robotcar/images --pose pnp --out res/
    mduit-loc query --index idx/raw --images data/robotcar --split test --translate-queries-to overcast-reference \
        --translator runs/mduit --out res/                       # queries translated into the map's appearance
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mduit_loc.errors import MduitError
from mduit_loc.retrieval.api import QueryOptions, RefineOptions, SearchOptions, localize
from mduit_loc.retrieval.cli_common import add_loading_arguments, extract_options, positive_int, setup_logging
from mduit_loc.retrieval.pose_estimation import DEFAULT_ALPHA, POSE_METHODS
from mduit_loc.retrieval.query_inputs import SPLITS
from mduit_loc.retrieval.query_translation import QueryTranslationOptions
from mduit_loc.runtime import resolve_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, type=Path, help="index directory from 'mduit-loc index'")
    parser.add_argument("--images", required=True, nargs="+", metavar="PATHS_OR_LIST",
                        help="image files, folders, list files (one name per line, relative to --image-root or "
                             "the dataset's image root) or a dataset folder (all its queries, see --split)")
    parser.add_argument("--out", required=True, type=Path, metavar="RESULTS",
                        help="output folder: pairs.txt, poses.txt (queries that got a pose), scores.csv, "
                             "queries.csv, summary.json")
    parser.add_argument("--top-k", type=positive_int, default=10, help="database images per query (default: 10)")
    parser.add_argument("--per-camera", action="store_true", help="retrieve only images of the query's camera")
    parser.add_argument("--per-location", action="store_true",
                        help="retrieve only images of the query's location (RobotCar per-location lists)")
    parser.add_argument("--translated-penalty", type=float, default=0.0,
                        help="index with translated copies (--translate-db): cosine taken off a copy's score "
                             "before each database image keeps its best variant (default: 0, the paper's "
                             "maximum; a positive value favours the original images)")
    parser.add_argument("--pose", choices=POSE_METHODS, default="top1",
                        help="top1 (default): pose of the best image; mean / weighted: average of the top "
                             "--pose-top-k poses; pnp: 6-DoF refinement with SIFT + PnP (falls back to top1). "
                             "Poses need a map with poses; an index of plain images gives pairs only")
    parser.add_argument("--pose-top-k", type=positive_int, help="poses averaged by mean/weighted (default: --top-k)")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                        help=f"weighted: weights = similarity^alpha (default: {DEFAULT_ALPHA:g})")
    parser.add_argument("--nprobe", type=positive_int, help="IVF lists searched per query (default: the index's)")
    parser.add_argument("--model", help="descriptor model (default: the one the index was built with; "
                                        "a different model is refused)")
    parser.add_argument("--data", help="dataset for query locations, intrinsics and 3D points "
                                       "(default: the dataset the index was built from)")
    parser.add_argument("--image-root", type=Path, help="root of the names in list files")
    parser.add_argument("--split", choices=SPLITS, default="all", help="queries of a dataset given as --images")
    translation = parser.add_argument_group("query-side translation")
    translation.add_argument("--translate-queries-to", metavar="CONDITION",
                             help="translate each query into this condition's appearance (e.g. overcast-reference, "
                                  "the map's) with an MDUIT model's domain-mean filter before describing it; "
                                  "any descriptor (PnP still matches the original image)")
    translation.add_argument("--translator", metavar="RUN",
                             help="MDUIT run that translates the queries (default: the index's model, when it is "
                                  "an MDUIT run)")
    translation.add_argument("--keep-original", type=float, default=0.0, metavar="W",
                             help="describe each query as the normalised blend (1 - W) x translated + W x "
                                  "original (default: 0, the translation alone)")
    group = parser.add_argument_group("pnp refinement")
    group.add_argument("--pnp-db-images", type=positive_int, default=5, help="top images matched (default: 5)")
    group.add_argument("--pnp-min-inliers", type=positive_int, default=20, help="accept a PnP pose with at least "
                                                                                 "this many inliers (default: 20)")
    group.add_argument("--pnp-max-error", type=float, help="RANSAC reprojection error in px "
                                                          "(default: 1%% of the query's longest side, >= 1 px)")
    group.add_argument("--pnp-lift-radius", type=float, help="database keypoints within this many px of the map's "
                                                            "3D structure are lifted (default: 1.5 x its spacing)")
    add_loading_arguments(parser)


def query_translation(args: argparse.Namespace) -> QueryTranslationOptions | None:
    if args.translate_queries_to is None:
        if args.translator is not None:
            raise MduitError("--translator translates queries: give --translate-queries-to CONDITION too")
        return None
    return QueryTranslationOptions(condition=args.translate_queries_to, translator=args.translator,
                                   keep_original=args.keep_original)


def run(args: argparse.Namespace) -> int:
    setup_logging()
    refine = RefineOptions(num_db_images=args.pnp_db_images, min_inliers=args.pnp_min_inliers,
                           ransac_max_error_px=args.pnp_max_error, lift_radius_px=args.pnp_lift_radius)
    options = QueryOptions(search=SearchOptions(k=args.top_k, per_camera=args.per_camera,
                                                per_location=args.per_location, nprobe=args.nprobe,
                                                translated_penalty=args.translated_penalty),
                           extract=extract_options(args), pose=args.pose, pose_top_k=args.pose_top_k,
                           alpha=args.alpha, model=args.model, data=args.data,
                           image_root=str(args.image_root) if args.image_root else None, split=args.split,
                           refine=refine, translate_queries=query_translation(args),
                           device=resolve_device(args.device))
    results = localize(args.index, args.images, options, args.out)
    refined = sum(1 for r in results.refinement.values() if r.refined)
    print(f"{args.out}: {len(results.poses)} of {len(results.queries)} queries localized ({args.pose}"
          + (f", {refined} refined by PnP" if args.pose == "pnp" else "") + ")"
          + (f"; {len(results.failed)} unreadable image(s) skipped" if results.failed else "")
          + (f"; pairs and scores for all {len(results.pairs)} in pairs.txt" if results.no_pose else ""))
    return 0
