"""Command-line entry point ``mduit-loc``.

Thin by design: each subcommand lives in its own module exposing ``add_arguments(parser)``
and ``run(args)``; only the chosen one is imported, so ``--help`` is instant.
Errors a user can cause are printed as one line; the traceback is shown with MDUIT_DEBUG=1.
Aliases: ``eval --table1 ...`` is ``table1 ...`` (its older spelling).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from mduit_loc import __version__
from mduit_loc.errors import MduitError

# name -> (module, one-line help). Order is the order of a typical workflow.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("mduit_loc.pipelines.cli_demo",
             "Run the whole pipeline on the built-in synthetic benchmark and write a report."),
    "synth": ("mduit_loc.datasets.synthetic.cli",
              "Render the synthetic multi-condition benchmark in the RobotCar Seasons layout."),
    "check": ("mduit_loc.datasets.cli_check",
              "Validate a dataset folder (RobotCar Seasons, COLMAP map, folder-per-domain) and summarise it."),
    "train": ("mduit_loc.translation.cli_train",
              "Train MDUIT (translation + contrastive descriptor) on a dataset."),
    "translate": ("mduit_loc.translation.cli_translate",
                  "Translate images into the appearance of other images; writes images and a grid PNG."),
    "translation-quality": ("mduit_loc.evaluation.cli_translation_quality",
                            "Measure translation quality on a benchmark's aligned set (PSNR/SSIM vs the true "
                            "rendering, content kept, appearance reached) beside colour-transfer and identity."),
    "train-netvlad": ("mduit_loc.retrieval.netvlad.cli_train",
                      "Train the NetVLAD baseline on a dataset (weakly supervised, by pose)."),
    "extract": ("mduit_loc.retrieval.cli_extract",
                "Extract global descriptors (MDUIT z, NetVLAD, raw pixels) to an hloc-style HDF5 file."),
    "index": ("mduit_loc.retrieval.cli_index",
              "Build a FAISS index of a database (optionally with translated copies)."),
    "query": ("mduit_loc.retrieval.cli_query",
              "Retrieve and localize query images against an index; writes pairs, poses and scores."),
    "eval": ("mduit_loc.evaluation.cli_eval",
             "Evaluate poses (day/night recall at the RobotCar Seasons thresholds)."),
    "table1": ("mduit_loc.pipelines.cli_table1",
               "Train and evaluate the paper's Table 1 rows (NetVLAD, MDUIT ablations) on a dataset "
               "(alias: eval --table1)."),
    "submit": ("mduit_loc.evaluation.cli_submit",
               "Write a RobotCar Seasons benchmark submission file from a poses file."),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mduit-loc",
        description="Visual localization under changing appearance (day/night, seasons, weather) "
                    "with MDUIT image translation and contrastive global descriptors.",
        epilog="Run 'mduit-loc COMMAND --help' for the options of a command. "
               "Set MDUIT_DEBUG=1 to see full tracebacks.",
    )
    parser.add_argument("--version", action="version", version=f"mduit-loc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_line) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_line, description=help_line)
        if name == command:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def _chosen_command(argv: list[str]) -> str | None:
    position = _command_position(argv)
    return argv[position] if position is not None and argv[position] in COMMANDS else None


def _command_position(argv: list[str]) -> int | None:
    for position, token in enumerate(argv):
        if not token.startswith("-"):
            return position
    return None


# Options of 'eval' that 'table1' does not take: it trains and localizes with its own models.
_EVAL_ONLY_INPUTS = ("--poses", "--model", "--index")


def resolve_alias(argv: list[str]) -> list[str]:
    """``eval --table1 ARGS`` -> ``table1 ARGS``; any other command line is returned as it is.

    Raises ``MduitError`` when the alias also names poses, models or indexes to evaluate.
    """
    position = _command_position(argv)
    if position is None or argv[position] != "eval" or "--table1" not in argv[position + 1:]:
        return argv
    rest = [token for token in argv[position + 1:] if token != "--table1"]
    if any(token.split("=", 1)[0] in _EVAL_ONLY_INPUTS for token in rest):
        raise MduitError("--table1 trains its own models: leave out --poses, --model and --index")
    return [*argv[:position], "table1", *rest]


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads sleep instead of spinning: spinning made FAISS PQ training ~5x slower
    # on a loaded 2-core machine. Set before torch/faiss are imported by the command module.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv = resolve_alias(argv)
    except MduitError as err:
        print(f"mduit-loc eval: error: {err}", file=sys.stderr)
        return 2
    command = _chosen_command(argv)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        result = module.run(args)
    except KeyboardInterrupt:
        print(f"mduit-loc {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one readable line; the traceback only on request
        if os.environ.get("MDUIT_DEBUG"):
            raise
        print(f"mduit-loc {args.command}: error: {_describe(err)}", file=sys.stderr)
        return 2
    return int(result or 0)


def _describe(err: Exception) -> str:
    if isinstance(err, MduitError):
        return str(err)
    if isinstance(err, OSError) and err.filename:
        return f"{err.strerror or type(err).__name__}: {err.filename}"
    return f"internal error ({type(err).__name__}: {err}); rerun with MDUIT_DEBUG=1 and report it"


if __name__ == "__main__":
    sys.exit(main())
