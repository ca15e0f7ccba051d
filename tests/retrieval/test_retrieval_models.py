"""The registry with the real networks: a tiny untrained MDUIT run and a tiny NetVLAD run."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mduit_loc.errors import ConfigMismatchError, DataNotFoundError, FormatError
from mduit_loc.poses import yaw_pose
from mduit_loc.retrieval.api import AppearanceOptions, build_index, localize
from mduit_loc.retrieval.descriptor_models import load_descriptor, load_translator
from mduit_loc.retrieval.faiss_index import load_index

from . import retrieval_fakes as fakes


@pytest.fixture(scope="module")
def mduit_run(tmp_path_factory):
    from mduit_loc.translation.config import preset
    from mduit_loc.translation.mduit import build_mduit
    from mduit_loc.translation.model_io import save_appearances, save_model, write_run_json

    run_dir = tmp_path_factory.mktemp("mduit_run")
    config = preset("tiny")
    torch.manual_seed(0)
    model = build_mduit(config, warn_untrained_vgg=False)
    checksum = save_model(model, run_dir)
    filters = {d: torch.randn(1, *config.filter_shape) * 0.1 for d in ("night", "snow")}
    save_appearances(run_dir, filters, {"night": ["night/rear/n1.png"], "snow": ["snow/rear/s1.png"]},
                     {"night": 1, "snow": 1})
    write_run_json(run_dir, config, checksum, {})
    return run_dir


@pytest.fixture(scope="module")
def netvlad_run(tmp_path_factory):
    from mduit_loc.retrieval.netvlad.model import NetVLADArchitecture, build_netvlad, save_netvlad_run

    run_dir = tmp_path_factory.mktemp("netvlad_run")
    torch.manual_seed(0)
    model = build_netvlad(NetVLADArchitecture(backbone="light", num_clusters=4, image_size=(32, 32)))
    save_netvlad_run(model, run_dir, config={})
    return run_dir


@pytest.fixture()
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    database = [(f"map/rear/{i}.png", tuple(int(v) for v in rng.integers(0, 256, 3)), yaw_pose(10 * i, (i, 0, 0)), 1)
                for i in range(4)]
    queries = [("night/rear/n1.png", (30, 30, 60), 1), ("snow/rear/s1.png", (240, 240, 250), 1)]
    data = fakes.color_dataset(tmp_path, database, queries)
    data.queries[:] = [type(q)(q.name, q.condition, q.camera, q.location, None, "train") for q in data.queries]
    return data


def test_mduit_run_gives_unit_descriptors_and_a_translator(mduit_run):
    descriptor = load_descriptor(mduit_run, "cpu")
    assert descriptor.name == "mduit" and descriptor.dim == 32 * 4 * 4 and descriptor.image_size == (64, 64)
    assert len(descriptor.checksum) == 64
    vectors = descriptor(torch.rand(2, 3, 64, 64))
    assert vectors.shape == (2, 32 * 4 * 4)
    assert torch.linalg.norm(vectors, dim=1) == pytest.approx(torch.ones(2), abs=1e-5)
    assert load_translator(mduit_run / "model.pt", "cpu") is not None


def test_content_grid_view_pools_the_content_features_on_a_grid(mduit_run):
    descriptor = load_descriptor(f"{mduit_run}#content:2x3", "cpu")
    model = descriptor.module
    channels = model.config.content_channels
    assert descriptor.name == "mduit" and descriptor.dim == channels * 2 * 3
    assert descriptor.spec == f"{mduit_run.resolve()}#content:2x3", "the manifest must find the same view again"
    images = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        content = model.content(images)                      # (2, C, h, w)
    h, w = content.shape[-2:]
    # hand-computed reference: the mean of each channel over each of the 2 x 3 cells, channel-major
    cells = [content[:, :, i * h // 2:(i + 1) * h // 2, j * w // 3:-(-(j + 1) * w // 3)].mean((2, 3))
             for i in range(2) for j in range(3)]
    expected = torch.nn.functional.normalize(torch.stack(cells, dim=2).flatten(1), dim=1)
    assert torch.allclose(descriptor(images), expected, atol=1e-5)
    z = load_descriptor(mduit_run, "cpu")
    assert descriptor.checksum != z.checksum, "an index of z must refuse content-grid queries"
    assert descriptor.translator is not None
    assert load_descriptor(f"{mduit_run}#content", "cpu").dim == channels * 4 * 4


def test_content_grid_index_finds_its_view_again_from_the_manifest(mduit_run, dataset, tmp_path):
    index_dir = build_index(dataset, f"{mduit_run}#content:2x2", tmp_path / "index", fakes.index_options())
    assert load_index(index_dir).manifest["descriptor"]["spec"].endswith("#content:2x2")
    results = localize(index_dir, dataset, fakes.query_options(top_k=2))   # no --model: from the manifest
    assert all(len(r) == 2 for r in results.pairs.values())
    with pytest.raises(ConfigMismatchError, match="model checksum|built with dimension"):
        localize(index_dir, dataset, fakes.query_options(model=str(mduit_run)))


def test_bad_views_are_clear_errors(mduit_run, netvlad_run):
    from mduit_loc.errors import MduitError

    with pytest.raises(MduitError, match="unknown MDUIT view 'pixels'"):
        load_descriptor(f"{mduit_run}#pixels", "cpu")
    with pytest.raises(MduitError, match="content:HxW"):
        load_descriptor(f"{mduit_run}#content:axb", "cpu")
    with pytest.raises(MduitError, match="for MDUIT runs only"):
        load_descriptor(f"{netvlad_run}#content:2x2", "cpu")


def test_mduit_translated_index_and_query(mduit_run, dataset, tmp_path):
    options = fakes.index_options(translate_db=True)
    index_dir = build_index(dataset, mduit_run, tmp_path / "index", options)
    table = load_index(index_dir).table
    assert table.appearances == ["original", "night-0", "snow-0"] and table.num_vectors == 12
    results = localize(index_dir, dataset, fakes.query_options(top_k=3))
    for name in ("night/rear/n1.png", "snow/rear/s1.png"):
        assert len(results.pairs[name]) == 3 and len(set(results.pairs[name])) == 3
    means = fakes.index_options(translate_db=True, appearances=AppearanceOptions(strategy="domain-means"))
    table = load_index(build_index(dataset, mduit_run, tmp_path / "means", means)).table
    assert table.appearances == ["original", "night-mean", "snow-mean"]


def test_netvlad_run_through_the_same_interface(netvlad_run, mduit_run, dataset, tmp_path):
    descriptor = load_descriptor(netvlad_run, "cpu")
    assert descriptor.name == "netvlad-light" and descriptor.image_size == (32, 32)
    index_dir = build_index(dataset, netvlad_run, tmp_path / "index", fakes.index_options())
    results = localize(index_dir, dataset, fakes.query_options(top_k=2))
    assert all(len(r) == 2 for r in results.pairs.values())
    with pytest.raises(ConfigMismatchError, match="the index was built with descriptor 'netvlad-light'"):
        localize(index_dir, dataset, fakes.query_options(model=str(mduit_run)))


def test_bad_model_specs_are_clear_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="descriptor model not found"):
        load_descriptor(tmp_path / "missing", "cpu")
    (tmp_path / "run").mkdir()
    with pytest.raises(DataNotFoundError, match="run.json"):
        load_descriptor(tmp_path / "run", "cpu")
    (tmp_path / "run" / "run.json").write_text('{"kind": "sift"}')
    with pytest.raises(FormatError, match='"kind": "mduit" or "netvlad"'):
        load_descriptor(tmp_path / "run", "cpu")


def test_index_remembers_the_model_by_absolute_path_and_asks_for_it_when_moved(netvlad_run, dataset, tmp_path,
                                                                                monkeypatch):
    import shutil

    from mduit_loc.errors import DataNotFoundError

    run = tmp_path / "runs" / "nv"
    shutil.copytree(netvlad_run, run)
    monkeypatch.chdir(tmp_path)
    index_dir = build_index(dataset, "runs/nv", tmp_path / "index", fakes.index_options())
    assert load_index(index_dir).manifest["descriptor"]["spec"] == str(run)
    monkeypatch.chdir(tmp_path / "runs")  # another working directory: the stored spec still works
    assert len(localize(index_dir, dataset, fakes.query_options(top_k=1)).poses) == 2
    run.rename(tmp_path / "moved")
    with pytest.raises(DataNotFoundError, match="was built with .*nv'.*pass --model"):
        localize(index_dir, dataset, fakes.query_options(top_k=1))
    moved = fakes.query_options(top_k=1, model=str(tmp_path / "moved"))
    assert len(localize(index_dir, dataset, moved).poses) == 2


def test_official_netvlad_mat_checkpoint_through_the_registry(dataset, tmp_path):
    from .netvlad.netvlad_helpers import tiny_net_layers, write_net_mat

    mat = write_net_mat(tmp_path / "Tiny_struct.mat", tiny_net_layers(np.random.default_rng(0)))
    descriptor = load_descriptor(mat, "cpu")
    vectors = descriptor(torch.rand(2, 3, *descriptor.image_size))
    assert vectors.shape == (2, descriptor.dim) and torch.linalg.norm(vectors, dim=1) == pytest.approx(torch.ones(2))
    index_dir = build_index(dataset, mat, tmp_path / "index", fakes.index_options())
    assert load_index(index_dir).manifest["descriptor"]["spec"] == str(mat.resolve())
    assert all(len(r) == 2 for r in localize(index_dir, dataset, fakes.query_options(top_k=2)).pairs.values())
