"""Index directory: manifest checks, refusal of other models, bad input, the TSV map, HDF5 layout."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mduit_loc.errors import ConfigMismatchError, DataNotFoundError, FormatError, MduitError
from mduit_loc.io_utils import leaves_folder
from mduit_loc.poses import Pose
from mduit_loc.retrieval import h5_io
from mduit_loc.retrieval.api import build_index, localize
from mduit_loc.retrieval.db_table import DatabaseTable, read_table, write_table
from mduit_loc.retrieval.descriptor_models import RawPixelsDescriptor
from mduit_loc.retrieval.extract import extract_to_h5
from mduit_loc.retrieval.faiss_index import (
    IndexParams,
    check_descriptor,
    default_pq_m,
    load_index,
    read_manifest,
    resolve_params,
)
from mduit_loc.retrieval.index_manifest import seal

from . import retrieval_fakes as fakes


@pytest.fixture()
def small_dataset(tmp_path):
    return fakes.color_dataset(
        tmp_path, database=[("ref/rear/a.png", (255, 0, 0), Pose.identity(), 1),
                            ("ref/left/b.png", (0, 255, 0), Pose.identity(), 2)],
        queries=[("night/rear/q.png", (250, 10, 0), 1)])


def test_manifest_records_descriptor_index_and_counts(small_dataset, tmp_path):
    index_dir = build_index(small_dataset, "test-color", tmp_path / "index", fakes.index_options())
    manifest = read_manifest(index_dir)
    assert manifest["descriptor"] == {"name": "test-color", "dim": 3, "checksum": "color-v1",
                                      "image_size": [16, 16], "spec": "test-color"}
    assert manifest["index"]["type"] == "flat" and manifest["index"]["metric"] == "inner_product"
    assert manifest["counts"] == {"images": 2, "vectors": 2, "appearances": 1, "failed_images": 0}
    assert sorted(manifest["intrinsics"]) == ["left", "rear"]
    assert not list(index_dir.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_query_with_another_model_or_dimension_is_refused(small_dataset, tmp_path):
    index_dir = build_index(small_dataset, "test-color", tmp_path / "index", fakes.index_options())
    with pytest.raises(ConfigMismatchError, match="model checksum 'color-v1'"):
        localize(index_dir, small_dataset, fakes.query_options(model="test-color-other"))
    with pytest.raises(ConfigMismatchError, match="descriptor 'test-color'"):
        localize(index_dir, small_dataset, fakes.query_options(model="raw-pixels"))
    identity = {"name": "test-color", "dim": 4, "checksum": "color-v1", "spec": "x"}
    with pytest.raises(ConfigMismatchError, match="dimension 3"):
        check_descriptor(read_manifest(index_dir), identity, index_dir)


def test_inconsistent_or_missing_index_files_are_clear_errors(small_dataset, tmp_path):
    index_dir = build_index(small_dataset, "test-color", tmp_path / "index", fakes.index_options())
    table_text = (index_dir / "database.tsv").read_text()
    (index_dir / "database.tsv").write_text("\n".join(table_text.splitlines()[:2]) + "\n")
    with pytest.raises(ConfigMismatchError, match="database.tsv: not the file this index was built with"):
        load_index(index_dir)
    manifest = json.loads((index_dir / "manifest.json").read_text())  # files re-recorded: the counts still differ
    (index_dir / "manifest.json").write_text(json.dumps(seal(manifest, index_dir, manifest["files"])))
    with pytest.raises(ConfigMismatchError, match="2 vectors in index.faiss, 1 rows in database.tsv"):
        load_index(index_dir)
    (index_dir / "manifest.json").unlink()
    with pytest.raises(DataNotFoundError, match="index manifest not found"):
        load_index(index_dir)
    with pytest.raises(DataNotFoundError, match="index directory not found"):
        load_index(tmp_path / "nowhere")


def test_empty_database_and_empty_query_list_are_clear_errors(small_dataset, tmp_path):
    small_dataset.database.clear()
    with pytest.raises(MduitError, match="the database is empty"):
        build_index(small_dataset, "test-color", tmp_path / "index", fakes.index_options())
    with pytest.raises(MduitError, match="no query images given"):
        from mduit_loc.retrieval.query_inputs import resolve_queries
        resolve_queries([])


def test_corrupt_database_image_fails_by_default_and_is_listed_when_skipped(small_dataset, tmp_path):
    bad = small_dataset.image_path("ref/left/b.png")
    bad.write_bytes(b"not an image at all")
    with pytest.raises(MduitError, match="unreadable image.*b.png"):
        build_index(small_dataset, "test-color", tmp_path / "fail", fakes.index_options())
    assert not (tmp_path / "fail" / "manifest.json").exists()
    index_dir = build_index(small_dataset, "test-color", tmp_path / "skip", fakes.index_options(on_error="skip"))
    assert load_index(index_dir).table.image_names == ["ref/rear/a.png"]
    assert str(bad) in (index_dir / "failed_images.txt").read_text()
    assert read_manifest(index_dir)["counts"]["failed_images"] == 1


def test_pq_and_ivf_parameters_are_resolved_for_small_maps():
    assert default_pq_m(128) == 32 and default_pq_m(256) == 64 and default_pq_m(4096) == 64 and default_pq_m(768) == 64
    params = resolve_params(IndexParams(type="ivf-pq"), 1000, 64)
    assert params.nlist == 25 and params.pq_m == 16 and params.pq_nbits == 4 and params.nprobe == 25
    with pytest.raises(MduitError, match="must divide"):
        resolve_params(IndexParams(type="ivf-pq", pq_m=7), 1000, 64)


# --- HDF5 in hloc's layout -----------------------------------------------------------------
def test_h5_file_has_hloc_global_descriptor_layout(small_dataset, tmp_path):
    descriptor = fakes.ColorDescriptor()
    paths = [small_dataset.image_path(d.name) for d in small_dataset.database]
    names = [d.name for d in small_dataset.database]
    report = extract_to_h5(descriptor, paths, names, tmp_path / "g.h5", fakes.quiet(fp16=True))
    assert report.written == 2
    with h5py.File(tmp_path / "g.h5", "r", libver="latest") as handle:  # as hloc reads it
        vector = handle["ref"]["rear"]["a.png"]["global_descriptor"]
        assert vector.shape == (3,) and vector.dtype == np.float16
        assert np.asarray(vector) == pytest.approx([1, 0, 0], abs=1e-3)
        assert h5_io.list_names(handle) == ["ref/left/b.png", "ref/rear/a.png"]


def test_extraction_skips_present_images_unless_overwrite_and_refuses_another_model(small_dataset, tmp_path):
    descriptor = fakes.ColorDescriptor()
    paths = [small_dataset.image_path(d.name) for d in small_dataset.database]
    names = [d.name for d in small_dataset.database]
    out = tmp_path / "g.h5"
    extract_to_h5(descriptor, paths[:1], names[:1], out, fakes.quiet())
    report = extract_to_h5(descriptor, paths, names, out, fakes.quiet())
    assert (report.written, report.already_present) == (1, 1)
    report = extract_to_h5(descriptor, paths, names, out, fakes.quiet(overwrite=True))
    assert (report.written, report.already_present) == (2, 0)
    with pytest.raises(ConfigMismatchError, match="descriptors of another model"):
        extract_to_h5(fakes.ColorDescriptor(checksum="other"), paths, names, out, fakes.quiet())


def test_raw_pixels_descriptor_is_unit_norm_and_brightness_invariant():
    import torch

    descriptor = RawPixelsDescriptor((4, 4))
    images = torch.rand(2, 3, *descriptor.image_size)
    vectors = descriptor(torch.cat([images, (images + 0.1)]))
    assert vectors.shape == (4, 48)
    assert torch.linalg.norm(vectors, dim=1) == pytest.approx(torch.ones(4), abs=1e-5)
    assert vectors[:2] == pytest.approx(vectors[2:], abs=1e-5)


# --- the vector map --------------------------------------------------------------------------
names = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=20).filter(
    lambda name: not leaves_folder(name))


@settings(max_examples=25, deadline=None)
@given(images=st.lists(st.tuples(names, st.sampled_from(["left", "rear", "cam 1"]),
                                 st.one_of(st.none(), st.integers(0, 999))),
                       min_size=1, max_size=5, unique_by=lambda item: item[0]),
       appearances=st.lists(st.sampled_from(["night-0", "snow-1", "cluster-2"]), unique=True, max_size=3))
def test_database_table_round_trips_through_tsv(tmp_path_factory, images, appearances):
    rng = np.random.default_rng(len(images))
    poses = [Pose.from_qvec(rng.standard_normal(4), rng.standard_normal(3)) for _ in images]
    table = DatabaseTable.build([n for n, _, _ in images], [c for _, c, _ in images], [loc for _, _, loc in images],
                                poses, ["original", *appearances])
    path = tmp_path_factory.mktemp("tsv") / "database.tsv"
    write_table(path, table)
    back = read_table(path)
    assert back.image_names == table.image_names and back.appearances == table.appearances
    assert (back.vector_images == table.vector_images).all()
    assert (back.vector_appearances == table.vector_appearances).all()
    assert (back.image_locations == table.image_locations).all()
    assert [back.cameras[c] for c in back.image_cameras] == [table.cameras[c] for c in table.image_cameras]
    for index, pose in enumerate(poses):
        assert back.pose(index).allclose(pose, atol=1e-9)


def test_database_table_errors_name_the_line(tmp_path):
    path = tmp_path / "database.tsv"
    header = "vector_id\timage\tappearance\tcamera\tlocation\tqw\tqx\tqy\tqz\ttx\tty\ttz\n"
    path.write_text(header + "0\ta.jpg\toriginal\trear\tnorth\t1\t0\t0\t0\t0\t0\t0\n")
    with pytest.raises(FormatError, match=r"database.tsv:2: expected an integer id and a location"):
        read_table(path)
    path.write_text(header + "3\ta.jpg\toriginal\trear\t-\t1\t0\t0\t0\t0\t0\t0\n")
    with pytest.raises(FormatError, match="vector ids in order, 0 here"):
        read_table(path)
    path.write_text(json.dumps({}) + "\n")
    with pytest.raises(FormatError, match=":1: expected the header"):
        read_table(path)
