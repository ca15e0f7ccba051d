"""The README's shell examples, run as written (issue 13: the README cannot drift from the CLI again).

The ```bash blocks of README.md run in README order in one bash shell, as a reader would type them
into one terminal (later commands use earlier outputs), in a temporary folder where ``.venv`` stands
for the environment running this test: ``source .venv/bin/activate`` works as in a checkout, and
nothing else puts ``mduit-loc`` on PATH. Every command must exit 0 (``set -e``). The only changes to
the README's text are the ``SUBSTITUTIONS`` below: each lowers a number or picks the tiny preset,
never an option's name, so a renamed or removed option still breaks the test. A block that cannot
run here is preceded by a visible marker in the README, ``<!-- readme-test: skip (reason) -->``; its
``mduit-loc`` lines are still parsed by the CLI's own argument parser. ``mduit-loc --help`` must list
every command the README names, and the README must name every command.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mduit_loc.cli import COMMANDS, build_parser, resolve_alias

README = Path(__file__).resolve().parents[1] / "README.md"

# (pattern, replacement, why). Applied to every line of a block that runs, commands and comments alike.
SUBSTITUTIONS: list[tuple[str, str, str]] = [
    (r"(--preset) (?:small|full|demo|paper)\b", r"\1 tiny", "the tiny benchmark / the tiny MDUIT settings"),
    (r"(--max-steps|--mduit-steps|--netvlad-steps) \d+", r"\1 2", "two optimizer steps"),
    (r"(--epochs) \d+", r"\1 1", "one epoch"),
    (r"(--budget-min|--time-budget-min) [0-9.]+", r"\1 0.05", "3 s of training"),
    (r"(--max-seconds) [0-9.]+", r"\1 3", "3 s of training"),
]
SKIP_MARKER = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
SHELL_FENCE = re.compile(r"^```(?:bash|sh|shell)\s*$")
MAX_SKIPPED_BLOCKS = 4            # the skip list stays short: most examples must run
TIMEOUT_S = 900


@dataclass
class Block:
    line: int                     # README line of the opening fence
    text: str
    skip_reason: str | None


def readme_blocks() -> list[Block]:
    blocks: list[Block] = []
    lines = README.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        if SHELL_FENCE.match(lines[index]):
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            marker = SKIP_MARKER.search(previous)
            blocks.append(Block(index + 1, "\n".join(lines[index + 1:end]), marker and marker["reason"].strip()))
            index = end
        index += 1
    return blocks


def shrink(text: str) -> str:
    for pattern, replacement, _ in SUBSTITUTIONS:
        text = re.sub(pattern, replacement, text)
    return text


def commands(block: str) -> list[str]:
    """The block's command lines (backslash continuations joined, blank and comment lines dropped)."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def cli_arguments(command: str) -> list[str] | None:
    """The arguments after ``mduit-loc`` (or ``-m mduit_loc.cli``) in a command line, else None."""
    tokens = shlex.split(command, comments=True)
    for position, token in enumerate(tokens):
        if os.path.basename(token) == "mduit-loc":
            return tokens[position + 1:]
        if token == "mduit_loc.cli" and position and tokens[position - 1] == "-m":
            return tokens[position + 1:]
    return None


def option_names(command: str) -> list[str]:
    return [token.split("=", 1)[0] for token in shlex.split(command, comments=True) if token.startswith("--")]


def test_the_readme_has_examples_and_few_skips():
    blocks = readme_blocks()
    skipped = [block for block in blocks if block.skip_reason]
    assert any(not block.skip_reason for block in blocks), "no runnable ```bash block in README.md"
    assert len(skipped) <= MAX_SKIPPED_BLOCKS, [(block.line, block.skip_reason) for block in skipped]


def test_substitutions_change_numbers_not_options():
    for block in readme_blocks():
        for command in commands(block.text):
            assert option_names(shrink(command)) == option_names(command), command
    assert shrink("mduit-loc train --preset paper --max-steps 300 --budget-min 5.5") == \
        "mduit-loc train --preset tiny --max-steps 2 --budget-min 0.05"


def test_every_readme_command_line_parses():
    """Every mduit-loc line, skipped blocks included, is accepted by the CLI's argument parser."""
    checked = 0
    for block in readme_blocks():
        for command in commands(block.text):
            arguments = cli_arguments(command)
            if arguments is None or arguments in ([], ["--help"]):
                continue
            arguments = resolve_alias(arguments)
            errors = io.StringIO()
            try:
                with contextlib.redirect_stderr(errors):
                    build_parser(arguments[0]).parse_args(arguments)
            except SystemExit:
                pytest.fail(f"README.md block at line {block.line}: {command!r} is refused by the parser: "
                            f"{errors.getvalue().strip().splitlines()[-1]}")
            checked += 1
    assert checked >= len(COMMANDS)


def test_help_lists_every_command_the_readme_names():
    help_text = subprocess.run([str(Path(sys.executable).parent / "mduit-loc"), "--help"], check=True,
                               capture_output=True, text=True).stdout
    listed = set(re.findall(r"^ {4}([a-z][a-z0-9-]*)", help_text, flags=re.MULTILINE))
    assert listed == set(COMMANDS)
    named = set(re.findall(r"mduit-loc ([a-z][a-z0-9-]*)", README.read_text(encoding="utf-8")))
    assert named <= listed, f"README.md names commands that `mduit-loc --help` does not list: {named - listed}"
    assert listed <= named, f"commands the README does not show: {listed - named}"


def _environment(folder: Path) -> dict[str, str]:
    """``folder/.venv`` stands for the environment running the tests (a link to it when it is a venv)."""
    venv = Path(sys.prefix)
    if (venv / "bin" / "activate").is_file():
        (folder / ".venv").symlink_to(venv, target_is_directory=True)
    else:  # not a virtual environment: an activate script that puts this interpreter's folder first
        (folder / ".venv" / "bin").mkdir(parents=True)
        (folder / ".venv" / "bin" / "activate").write_text(
            f'PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"; export PATH\n')
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != bin_dir)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.mark.slow
def test_readme_examples_run(tmp_path):
    # Each command is echoed before it runs, so a failure names it; `set -e` stops at the first.
    script = ["set -e"]
    for block in readme_blocks():
        if not block.skip_reason:
            for command in commands(shrink(block.text)):
                script += [f"echo {shlex.quote(f'+ [README.md block at line {block.line}] {command}')} >&2", command]
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=_environment(tmp_path),
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    if result.returncode != 0:
        failed = [line for line in result.stderr.splitlines() if line.startswith("+ [README.md")][-1:]
        pytest.fail(f"{failed[0] if failed else 'a command'} exited {result.returncode}\n"
                    f"--- stderr (tail) ---\n{result.stderr[-3000:]}")
