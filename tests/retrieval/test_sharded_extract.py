"""Extraction sharded over torchrun ranks (2 CPU processes, gloo) writes the single process's file exactly."""
import os
import socket
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest
import torch

from mduit_loc.datasets.images import save_image
from mduit_loc.retrieval.extract import CHECKSUM_ATTR, NAME_ATTR, _batches_of_rank
from mduit_loc.retrieval.h5_io import list_names, read_descriptors
from mduit_loc.translation.config import apply_overrides, preset
from mduit_loc.translation.mduit import build_mduit
from mduit_loc.translation.model_io import save_model, write_run_json

MINI = dict(image_size=(32, 32), encoder_base_channels=4, encoder_res_blocks=1, vgg_layer="relu2_2",
            appearance_input_size=16, appearance_hidden=16, filter_groups=16, generator_res_blocks=1,
            disc_base_channels=8, disc_layers=2, descriptor_dim=32)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def mini_run(tmp_path_factory):
    """An untrained miniature MDUIT run folder (speed and exactness do not depend on training)."""
    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = apply_overrides(preset("tiny"), MINI)
        model = build_mduit(config, warn_untrained_vgg=False)
    write_run_json(run, config, save_model(model, run), {})
    return run


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """13 images in two folders (batches of 3: 5 batches, uneven over 2 ranks) and two unreadable ones."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(13):
        save_image(root / ("a" if i % 2 else "b") / f"{i:02d}.png", rng.integers(0, 255, (40, 48, 3), np.uint8))
    (root / "a" / "05.png").write_bytes(b"not a png")      # batch 1 (rank 1)
    (root / "b" / "12.png").write_bytes(b"broken")         # batch 4, alone in it (rank 0)
    return root


def extract(command_prefix, model, images, out, *extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    command = [*command_prefix, "-m", "mduit_loc.cli", "extract", "--model", str(model), "--images", str(images),
               "--out", str(out), "--batch-size", "3", "--num-workers", "0", "--device", "cpu", "--no-progress",
               *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)


def torchrun(processes: int = 2):
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
            "--master_addr", "127.0.0.1", "--master_port", str(free_port())]


def test_rank_batches_are_the_single_process_batches_dealt_round_robin():
    assert _batches_of_rank(11, 3, 0, 2) == [[0, 1, 2], [6, 7, 8]]
    assert _batches_of_rank(11, 3, 1, 2) == [[3, 4, 5], [9, 10]]
    assert _batches_of_rank(2, 3, 1, 2) == []


@pytest.mark.slow
def test_two_processes_write_the_single_process_file(mini_run, images, tmp_path):
    single = extract([sys.executable], mini_run, images, tmp_path / "single.h5", "--on-error", "skip")
    assert single.returncode == 0, single.stderr[-3000:]
    sharded = extract(torchrun(), mini_run, images, tmp_path / "sharded.h5", "--on-error", "skip")
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    assert "11 descriptor(s) written by 2 processes" in sharded.stdout and "2 unreadable" in sharded.stdout
    # the same failures, listed in the same order
    skipped = [line for line in single.stdout.splitlines() if line.startswith("  skipped")]
    assert len(skipped) == 2 and skipped == [line for line in sharded.stdout.splitlines()
                                             if line.startswith("  skipped")]
    names, vectors = read_descriptors(tmp_path / "single.h5")
    sharded_names, sharded_vectors = read_descriptors(tmp_path / "sharded.h5")
    assert names == sharded_names and len(names) == 11 and "a/05.png" not in names
    assert np.array_equal(vectors, sharded_vectors)          # bit for bit
    with h5py.File(tmp_path / "single.h5") as one, h5py.File(tmp_path / "sharded.h5") as two:
        assert dict(one.attrs) == dict(two.attrs) and one.attrs[NAME_ATTR] == "mduit"
        assert list_names(two) == names and two.attrs[CHECKSUM_ATTR]
        # hloc's layout: one group per image holding global_descriptor, in the order one process wrote them
        order = []
        two.visititems(lambda name, obj: order.append(name) if name.endswith("global_descriptor") else None)
        assert len(order) == 11 and two["a/01.png/global_descriptor"].shape == (32,)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.slow
def test_a_failing_rank_stops_every_rank_and_leaves_no_file(mini_run, images, tmp_path):
    out = tmp_path / "sharded.h5"
    done = extract(torchrun(), mini_run, images, out)               # --on-error fail: a/05.png is rank 1's
    assert done.returncode != 0
    assert "unreadable image" in done.stderr and "a/05.png" in done.stderr
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == []


@pytest.mark.slow
def test_two_processes_build_the_single_process_index(mini_run, images, tmp_path):
    import faiss

    for name, prefix in (("single", [sys.executable]), ("sharded", torchrun())):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        done = subprocess.run([*prefix, "-m", "mduit_loc.cli", "index", "--db", str(images), "--model", str(mini_run),
                               "--out", str(tmp_path / name), "--batch-size", "3", "--num-workers", "0",
                               "--device", "cpu", "--no-progress", "--on-error", "skip"],
                              env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("index of 11 vectors") == 1     # rank 0 alone reports
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    for member in ("database.tsv", "failed_images.txt"):
        assert (single / member).read_text() == (sharded / member).read_text()
    (names, vectors), (sharded_names, sharded_vectors) = (read_descriptors(folder / "descriptors.h5")
                                                          for folder in (single, sharded))
    assert names == sharded_names and np.array_equal(vectors, sharded_vectors)
    one, two = (faiss.read_index(str(folder / "index.faiss")) for folder in (single, sharded))
    assert one.ntotal == two.ntotal == 11
    assert np.array_equal(one.reconstruct_n(0, 11), two.reconstruct_n(0, 11))
    assert not [p for p in sharded.iterdir() if p.name.startswith(".mduit-staging")]
