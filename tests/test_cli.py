"""The ``mduit-loc`` entry point: help for every command, one-line user errors."""
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mduit_loc.cli import COMMANDS, _describe, main
from mduit_loc.errors import FormatError

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MDUIT_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "mduit_loc.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)


def test_top_level_help_lists_every_subcommand_with_its_line():
    result = _cli("--help")
    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stdout.split())  # argparse wraps long lines
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("    ") and line.split()]
    for name, (_, help_line) in COMMANDS.items():
        assert name in listed, f"{name} missing from --help"
        assert f"{name} {help_line}" in flat or help_line in flat


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "mduit-loc"
    if not script.exists():
        pytest.skip(f"no console script beside {sys.executable} (package not installed in this environment)")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("mduit-loc ")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_subcommand_has_help(command, capsys):
    module = COMMANDS[command][0]
    try:
        importlib.import_module(module)
    except ImportError as err:
        if command == "demo":
            pytest.skip(f"{module} is being written in parallel and cannot be imported yet ({err})")
        raise
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: mduit-loc {command}") and COMMANDS[command][1] in " ".join(out.split())


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 1
    assert "COMMAND" in capsys.readouterr().out


def test_user_error_is_exactly_one_line_on_stderr(tmp_path):
    result = _cli("check", str(tmp_path / "no-such-data"), "--num-workers", "0")
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert lines == [f"mduit-loc check: error: dataset folder not found: {tmp_path / 'no-such-data'}"]
    assert "Traceback" not in result.stdout


def test_error_descriptions():
    assert _describe(FormatError("a.txt", 3, "17 tokens", got="x")) == "a.txt:3: expected 17 tokens, got 'x'"
    assert _describe(FileNotFoundError(2, "No such file or directory", "b.bin")) == \
        "No such file or directory: b.bin"
    assert _describe(ZeroDivisionError("division by zero")).startswith("internal error (ZeroDivisionError")
