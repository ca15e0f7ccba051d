"""NetVLAD training by pose on generated data: loss goes down, resume, run directory, CLI."""
from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch

from mduit_loc.datasets.colmap_text import ColmapImage, write_colmap_text
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.errors import ConfigMismatchError, MduitError
from mduit_loc.poses import yaw_pose
from mduit_loc.retrieval.netvlad.model import load_netvlad
from mduit_loc.retrieval.netvlad.train_config import NetVLADTrainConfig, parse_image_size
from mduit_loc.retrieval.netvlad.train_data import pca_whitening
from mduit_loc.retrieval.netvlad.training import NetVLADTrainer, plan_loss, train_netvlad, triplet_loss
from mduit_loc.torch_io import state_dict_sha256

from .netvlad_helpers import make_posed_images


@pytest.fixture(scope="module")
def posed_images(tmp_path_factory):
    return make_posed_images(tmp_path_factory.mktemp("posed"))


def tiny_config(**changes) -> NetVLADTrainConfig:
    base = dict(backbone="light", light_channels=(8, 16, 16, 32, 32), num_clusters=4, image_size=(32, 32),
                n_negatives=2, negative_pool=24, batch_size=4, epochs=3, lr=3e-3, num_workers=0,
                kmeans_images=24, kmeans_descriptors=400, checkpoint_every=2)
    return NetVLADTrainConfig(**{**base, **changes})


def test_triplet_loss_hand_computed():
    anchor, positive = torch.tensor([1.0, 0.0]), torch.tensor([0.8, 0.6])       # |q-p|^2 = 0.4
    near_neg, far_neg = torch.tensor([0.6, 0.8]), torch.tensor([-1.0, 0.0])       # 0.8 and 4.0
    descriptors = torch.stack([anchor, positive, near_neg, far_neg])[None]
    loss, stats = triplet_loss(descriptors, margin=0.5)
    # max(0, 0.5 + 0.4 - 0.8) = 0.1 and max(0, 0.5 + 0.4 - 4) = 0, averaged over the 2 negatives.
    assert loss.item() == pytest.approx(0.05)
    assert stats["active_fraction"] == 0.5 and stats["positive_distance"] == pytest.approx(0.4)


def test_training_lowers_the_triplet_loss_and_writes_a_loadable_run(posed_images, tmp_path):
    config = tiny_config()
    trainer = NetVLADTrainer(config, tmp_path / "run", posed_images, progress=False)
    initial = trainer.initial_model()
    plan = trainer.mine_epoch(initial, 0)          # fixed tuples, hardest for the initial model
    before = plan_loss(initial, config, trainer.paths, plan)
    result = trainer.run()
    after = plan_loss(result.model, config, trainer.paths, plan)
    assert before > 0.05 and after < 0.5 * before, (before, after)

    steps_per_epoch = -(-len(trainer.anchors) // config.batch_size)
    assert result.steps == 3 * steps_per_epoch and result.stopped_by == "epochs"
    assert result.images_seen == result.steps * config.images_per_step
    with open(tmp_path / "run" / "loss.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == list(range(1, result.steps + 1))

    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert meta["kind"] == "netvlad" and meta["checksum"] == state_dict_sha256(state)   # of the weights, not the file
    assert meta["config"]["num_clusters"] == 4 and meta["training"]["images_seen"] == result.images_seen
    loaded = load_netvlad(tmp_path / "run", "cpu")
    assert (loaded.name, loaded.dim, loaded.image_size, loaded.checksum) == ("netvlad-light", 128, (32, 32),
                                                                             meta["checksum"])
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(images), result.model.eval()(images), atol=1e-6)
    assert load_netvlad(tmp_path / "run" / "model.pt").checksum == meta["checksum"]


def test_run_directory_works_through_the_descriptor_registry(posed_images, tmp_path):
    from mduit_loc.retrieval.descriptor_models import load_descriptor

    train_netvlad(tiny_config(max_steps=1), tmp_path / "run", posed_images, progress=False)
    descriptor = load_descriptor(tmp_path / "run", "cpu")
    vectors = descriptor(torch.rand(3, 3, 32, 32))
    assert descriptor.name == "netvlad-light" and descriptor.dim == 128 and vectors.shape == (3, 128)


def test_resume_continues_exactly(posed_images, tmp_path):
    straight = train_netvlad(tiny_config(max_steps=8), tmp_path / "straight", posed_images, progress=False)
    first = train_netvlad(tiny_config(max_steps=4), tmp_path / "resumed", posed_images, progress=False)
    assert first.stopped_by == "max_steps" and first.steps == 4
    with pytest.raises(MduitError, match="--resume"):
        train_netvlad(tiny_config(max_steps=8), tmp_path / "resumed", posed_images, progress=False)
    with pytest.raises(ConfigMismatchError, match="num_clusters"):
        train_netvlad(tiny_config(max_steps=8, num_clusters=5), tmp_path / "resumed", posed_images,
                      resume=True, progress=False)
    resumed = train_netvlad(tiny_config(max_steps=8), tmp_path / "resumed", posed_images, resume=True, progress=False)
    assert resumed.steps == 8 and resumed.images_seen == straight.images_seen
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    with open(tmp_path / "resumed" / "loss.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == list(range(1, 9))
    state = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 8


def test_resume_under_another_thread_count_says_so(posed_images, tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        train_netvlad(tiny_config(max_steps=2), tmp_path / "run", posed_images, progress=False)
        capsys.readouterr()
        torch.set_num_threads(2)
        train_netvlad(tiny_config(max_steps=3), tmp_path / "run", posed_images, resume=True, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert "written with 1 torch thread(s), this process uses 2" in capsys.readouterr().err


def test_pca_whitening_decorrelates():
    generator = torch.Generator().manual_seed(0)
    data = torch.randn(300, 6, generator=generator) @ torch.randn(6, 6, generator=generator) + 3.0
    weight, bias = pca_whitening(data, 4)
    whitened = data @ weight.t() + bias
    assert torch.allclose(whitened.mean(dim=0), torch.zeros(4), atol=1e-4)
    assert torch.allclose(torch.cov(whitened.t()), torch.eye(4), atol=1e-3)
    with pytest.raises(MduitError, match="needs at least 11 images"):
        pca_whitening(data[:5], 10)


def test_no_revisited_places_is_a_clear_error(posed_images, tmp_path):
    lonely = [dataclasses.replace(image, pose=yaw_pose(0, (60.0 * i, 0, 0))) for i, image in enumerate(posed_images)]
    with pytest.raises(MduitError, match="has both a positive"):
        NetVLADTrainer(tiny_config(), tmp_path / "run", lonely)


def test_image_size_parsing():
    assert parse_image_size("96") == (96, 96) and parse_image_size("240x320") == (240, 320)
    with pytest.raises(MduitError, match="--image-size"):
        parse_image_size("big")


def test_cli_trains_on_a_colmap_map_with_whitening(posed_images, tmp_path, capsys):
    from mduit_loc.cli import main

    root = tmp_path / "map"
    entries = []
    for image in posed_images:
        target = root / "images" / image.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(image.path.read_bytes())
        entries.append(ColmapImage(image.name, image.pose, 1))
    write_colmap_text(root / "sparse", {1: Intrinsics(30, 30, 16, 16, 32, 32)}, entries)
    out = tmp_path / "run"
    code = main(["train-netvlad", "--data", str(root), "--out", str(out), "--clusters", "4", "--image-size", "32",
                 "--max-steps", "3", "--negatives", "2", "--negative-pool", "24", "--whiten-dim", "8",
                 "--workers", "0", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0 and "stopped by max_steps" in printed and "8-D" in printed
    model = load_netvlad(out, "cpu")
    assert model.dim == 8 and model.architecture.whiten_dim == 8
    vectors = model(torch.rand(2, 3, 32, 32))
    assert torch.allclose(vectors.norm(dim=1), torch.ones(2), atol=1e-5)
    meta = json.loads((out / "run.json").read_text())
    assert meta["training"]["steps"] == 3 and meta["num_training_images"] == len(posed_images)
    assert np.isclose(meta["training"]["images_seen"], 3 * 4 * 4)


def test_vgg16_from_torchvision_weights_trains_conv5_only(posed_images, tmp_path):
    from mduit_loc.nn.vgg import VGG16Trunk

    trunk = VGG16Trunk("pool5")
    weights = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in trunk.features.state_dict().items()}, weights)
    config = tiny_config(backbone="vgg16", num_clusters=8, max_steps=1, batch_size=2)
    result = train_netvlad(config, tmp_path / "run", posed_images, vgg_weights=weights, progress=False)
    features = result.model.backbone.features
    assert torch.equal(features[0].weight.cpu(), trunk.features[0].weight)       # conv1_1 frozen
    assert not torch.equal(features[28].weight.cpu(), trunk.features[28].weight)  # conv5_3 trained
    assert result.model.name == "netvlad-vgg16" and result.model.dim == 512 * 8


def test_cli_rejects_vgg_weights_for_the_light_backbone(tmp_path, capsys):
    from mduit_loc.cli import main

    code = main(["train-netvlad", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                 "--vgg-weights", str(tmp_path / "w.pth")])
    assert code == 2 and "--vgg-weights only applies to --backbone vgg16" in capsys.readouterr().err


def test_a_second_training_into_a_held_run_folder_is_refused_before_any_work(posed_images, tmp_path, monkeypatch):
    """Issue 12 item 12 for ``train-netvlad``; the run files are one output set (item 11)."""
    from mduit_loc.output_lock import OutputBusyError
    from mduit_loc.retrieval.netvlad import model as netvlad_model
    from mduit_loc.retrieval.netvlad import training

    from ...test_output_lock import hold_in_another_process

    run = tmp_path / "run"
    config = tiny_config(epochs=1)
    holder = hold_in_another_process(run, "train-netvlad")
    try:
        with monkeypatch.context() as patch:
            patch.setattr(training, "NetVLADTrainer", lambda *a, **k: pytest.fail("no work may start"))
            with pytest.raises(OutputBusyError, match=rf"another mduit-loc train-netvlad \(pid {holder.pid}\)"):
                train_netvlad(config, run, posed_images, "cpu", progress=False)
    finally:
        holder.communicate("")

    def dying_json(*args):
        raise KeyboardInterrupt   # model.pt of the run is staged by now

    monkeypatch.setattr(netvlad_model, "write_json_atomic", dying_json)
    with pytest.raises(KeyboardInterrupt):
        train_netvlad(config, run, posed_images, "cpu", progress=False)
    assert not (run / "model.pt").exists() and not (run / "run.json").exists()
    assert not [p for p in run.iterdir() if p.name.startswith(".mduit-staging-")]
