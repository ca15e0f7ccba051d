"""Programmatic entry points of the retrieval stage (stable; used by evaluation and the demo).

    from mduit_loc.retrieval.api import IndexOptions, IndexParams, QueryOptions, SearchOptions, build_index, localize

    index_dir = build_index("data/robotcar", "runs/mduit", Path("out/index"),
                            IndexOptions(translate_db=True, params=IndexParams(type="ivf-pq")))
    results = localize(index_dir, ["data/robotcar"],
                       QueryOptions(search=SearchOptions(per_camera=True, per_location=True)),
                       out=Path("out/results"))
    results.poses["night/rear/1418235223450115.jpg"]    # Pose (cam_from_world)
    results.pairs[...]                                   # ranked database names
    results.scores[...]                                  # their cosine similarities

Options are keyword-only and nested (``IndexOptions.params`` / ``.extract``, ``QueryOptions.search``
/ ``.extract``); their ``device`` is a ``torch.device`` (``runtime.resolve_device("auto")``).
``build_index(db, model, out, options)``: ``db`` is a dataset folder (RobotCar Seasons layout, a
COLMAP model) or a ``LocalizationDataset``; ``model`` an MDUIT/NetVLAD run, a NetVLAD ``.mat`` or
``raw-pixels``. ``localize(index, queries, options, out)``: ``queries`` is a list of ``--images``
inputs (files, folders, list files, dataset folders), a list of ``QueryItem`` or a
``LocalizationDataset`` (its queries of ``options.split``); ``out`` (optional) receives pairs.txt,
poses.txt, scores.csv, queries.csv, summary.json (see ``mduit_loc.retrieval.outputs``).

To localize many small batches (a demo), load the index and the model once::

    localizer = Localizer(index_dir, QueryOptions(search=SearchOptions(k=5), pose="pnp"))
    results = localizer.localize([Path("photo.jpg")])     # repeatable; database SIFT features are cached
"""
from __future__ import annotations

from mduit_loc.retrieval.extract import ExtractOptions
from mduit_loc.retrieval.faiss_index import IndexParams
from mduit_loc.retrieval.indexing import build_index
from mduit_loc.retrieval.localize import LocalizationResults, Localizer, localize
from mduit_loc.retrieval.options import IndexOptions, QueryOptions
from mduit_loc.retrieval.query_inputs import QueryItem
from mduit_loc.retrieval.query_translation import QueryTranslationOptions
from mduit_loc.retrieval.refine import RefineOptions, RefineResult
from mduit_loc.retrieval.search import SearchOptions
from mduit_loc.retrieval.translated_db import AppearanceOptions

__all__ = ["build_index", "localize", "Localizer", "IndexOptions", "QueryOptions", "LocalizationResults", "QueryItem",
           "RefineOptions", "RefineResult", "AppearanceOptions", "ExtractOptions", "IndexParams", "SearchOptions",
           "QueryTranslationOptions"]
