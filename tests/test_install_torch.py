"""scripts/install_torch.sh (issue 13 item 7): which torch build `make setup` installs, that an
unreachable CPU index falls back quickly instead of hanging, and the Makefile's use of it."""
from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "scripts" / "install_torch.sh"
pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")


def _sh(command: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", f". {SCRIPT}; {command}"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "INSTALL_TORCH_LIB": "1", **env})


@pytest.mark.parametrize("mode, installed, gpu, plan", [
    ("auto", "none", "no", "cpu"), ("auto", "none", "yes", "cuda"), ("auto", "cuda", "no", "keep"),
    ("auto", "cpu", "yes", "keep"), ("cpu", "cuda", "no", "cpu"), ("cpu", "cpu", "yes", "keep"),
    ("cuda", "cpu", "yes", "cuda"), ("cuda", "none", "no", "cuda"), ("skip", "none", "no", "keep")])
def test_plan_per_mode_installed_build_and_gpu(mode, installed, gpu, plan):
    assert _sh(f"torch_plan {mode} {installed} {gpu}").stdout.strip() == plan


def test_unknown_mode_is_refused():
    result = _sh("torch_plan gpu none no")
    assert result.returncode == 2 and "unknown TORCH mode 'gpu'" in result.stderr


def _fake_python(tmp_path: Path, build: str) -> Path:
    """A python whose ``import torch`` reports ``build`` (none: not installed); anything else runs for real."""
    fake = tmp_path / "python"
    torch_line = "exit 1" if build == "none" else f"echo {build}; exit 0"
    fake.write_text(f'#!/bin/sh\ncase "$*" in *"import torch"*) {torch_line} ;; esac\nexec "{sys.executable}" "$@"\n')
    fake.chmod(0o755)
    return fake


def _run_script(python: Path, mode: str, index: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = subprocess.run(["sh", str(SCRIPT), str(python), mode, "constraints-cpu.txt"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT, env={
                                **os.environ, "TORCH_INSTALL_DRY_RUN": "1", "TORCH_CPU_INDEX": index,
                                "PATH": "/usr/bin:/bin"})  # no nvidia-smi: a machine without a GPU
    return result, time.monotonic() - start


def test_without_gpu_torch_comes_from_the_cpu_index(tmp_path):
    (tmp_path / "index" / "torch").mkdir(parents=True)
    (tmp_path / "index" / "torch" / "index.html").write_text("<html></html>")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "index"))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        index = f"http://127.0.0.1:{server.server_address[1]}"
        result, _ = _run_script(_fake_python(tmp_path, "none"), "auto", index)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"pip install -q -c constraints-cpu.txt --timeout 30 --retries 1 "
                                          f"--index-url {index} torch")


def test_unreachable_cpu_index_falls_back_at_once_to_the_configured_index(tmp_path):
    result, elapsed = _run_script(_fake_python(tmp_path, "none"), "auto", "http://127.0.0.1:9")
    assert result.returncode == 0 and elapsed < 20
    assert "is not reachable" in result.stderr and "CUDA build" in result.stderr
    assert result.stdout.strip().endswith("pip install -q -c constraints-cpu.txt torch")
    # Forcing the CPU build over a CUDA one cannot work without the index: said, and nothing removed.
    result, _ = _run_script(_fake_python(tmp_path, "cuda"), "cpu", "http://127.0.0.1:9")
    assert result.returncode == 1 and "cuda build is kept" in result.stderr and "uninstall" not in result.stdout


def test_forced_builds_replace_the_other_one(tmp_path):
    result, _ = _run_script(_fake_python(tmp_path, "cpu"), "cuda", "http://127.0.0.1:9")
    assert result.stdout.splitlines()[0].endswith("pip uninstall -q -y torch")
    assert result.stdout.splitlines()[1].endswith("pip install -q -c constraints-cpu.txt torch")
    result, _ = _run_script(_fake_python(tmp_path, "cpu"), "skip", "http://127.0.0.1:9")
    assert result.returncode == 0 and result.stdout == "" and "cpu build kept" in result.stderr


def test_the_probe_of_the_real_cpu_index_never_hangs():
    """Whatever this machine's network (here only PyPI is reachable), the probe answers within its timeout."""
    start = time.monotonic()
    _sh(f"index_reachable {sys.executable} https://download.pytorch.org/whl/cpu", TORCH_PROBE_TIMEOUT="3")
    assert time.monotonic() - start < 15


def test_this_venv_keeps_its_torch():
    result = subprocess.run(["sh", str(SCRIPT), sys.executable], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "build kept (TORCH=auto)" in result.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("args, expected", [
    ([], "sh scripts/install_torch.sh .venv/bin/python auto constraints-cpu.txt"),
    (["TORCH=cpu"], "sh scripts/install_torch.sh .venv/bin/python cpu constraints-cpu.txt"),
    (["TORCH=skip"], "sh scripts/install_torch.sh .venv/bin/python skip constraints-cpu.txt")])
def test_make_setup_installs_torch_before_the_package(args, expected):
    # -B: as on a fresh clone, every recipe is listed
    lines = subprocess.run(["make", "-n", "-B", "-C", str(ROOT), "--no-print-directory", "setup", *args],
                           capture_output=True, text=True, timeout=60).stdout.splitlines()
    assert expected in lines
    package = next(i for i, line in enumerate(lines) if "pip install -q -c constraints-cpu.txt -e" in line)
    assert lines.index(expected) < package
