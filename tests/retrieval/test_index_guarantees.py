"""Issue 12 phase B on the index folder: validated manifest and table, the manifest bound to the vectors,
whole-or-absent builds, one writer, names the result files can hold, recorded paths kept inside."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mduit_loc.errors import ConfigMismatchError, FormatError, MduitError
from mduit_loc.output_lock import OutputBusyError, output_lock
from mduit_loc.poses import Pose
from mduit_loc.retrieval import faiss_index, indexing
from mduit_loc.retrieval.api import build_index, localize
from mduit_loc.retrieval.db_table import read_table
from mduit_loc.retrieval.faiss_index import load_index
from mduit_loc.retrieval.index_manifest import seal

from . import retrieval_fakes as fakes

HEADER = "vector_id\timage\tappearance\tcamera\tlocation\tqw\tqx\tqy\tqz\ttx\tty\ttz"


@pytest.fixture()
def dataset(tmp_path):
    return fakes.color_dataset(
        tmp_path / "data", database=[("ref/rear/a.png", (255, 0, 0), Pose.identity(), 1),
                                     ("ref/left/b.png", (0, 255, 0), Pose.identity(), 2)],
        queries=[("night/rear/q.png", (250, 10, 0), 1)])


@pytest.fixture()
def index_dir(dataset, tmp_path):
    return build_index(dataset, "test-color", tmp_path / "index", fakes.index_options())


def edit_manifest(index_dir, edit, reseal: bool = True) -> None:
    """Change the manifest; with ``reseal`` also re-record the files and the seal (a careful forger)."""
    path = index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(seal(manifest, index_dir, manifest["files"]) if reseal else manifest))


def snapshot(folder) -> dict[str, bytes]:
    """The files of ``folder`` but the hidden ones (the lock file names its last holder)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


# --- item 4: database.tsv ----------------------------------------------------------------------
@pytest.mark.parametrize("pose, expected", [
    ("inf\t0\t0\t0\t0\t0\t0", r"database.tsv:2: expected 7 pose numbers .*finite numbers"),
    ("1\t0\t0\t0\tnan\t0\t0", r"database.tsv:2: expected 7 pose numbers .*finite numbers"),
    ("0\t0\t0\t0\t0\t0\t0", r"database.tsv:2: expected a quaternion of non-zero norm"),
    ("1\t0\t0\t0\t0\t0", r"database.tsv:2: expected 12 tab-separated columns"),
    ("1\t0\t0\t0\t0\t0\t", r"database.tsv:2: expected 12 tab-separated columns"),   # tz empty: stripped away
])
def test_table_poses_are_validated_on_load_with_file_and_line(tmp_path, pose, expected):
    path = tmp_path / "database.tsv"
    path.write_text(f"{HEADER}\n0\ta.png\toriginal\trear\t-\t{pose}\n")
    with pytest.raises(FormatError, match=expected):
        read_table(path)


def test_table_reader_takes_bom_and_crlf_and_refuses_inconsistent_rows_and_escaping_names(tmp_path):
    path = tmp_path / "database.tsv"
    rows = ["0\ta.png\toriginal\trear\t3\t1\t0\t0\t0\t1\t2\t3", "1\ta.png\tnight-0\trear\t3\t1\t0\t0\t0\t1\t2\t3"]
    path.write_bytes(("\ufeff" + "\r\n".join([HEADER, *rows]) + "\r\n").encode())
    table = read_table(path)
    assert table.image_names == ["a.png"] and table.appearances == ["original", "night-0"]
    path.write_text("\n".join([HEADER, rows[0], rows[1].replace("\t3\t1", "\t4\t1", 1)]) + "\n")
    with pytest.raises(FormatError, match=r"database.tsv:3: expected the camera, location and pose of 'a.png'"):
        read_table(path)
    path.write_text("\n".join([HEADER, rows[0].replace("a.png", "../../etc/passwd")]) + "\n")
    with pytest.raises(FormatError, match=r"database.tsv:2: expected an image name relative to the image folder"):
        read_table(path)
    path.write_bytes(HEADER.encode() + b"\n0\ta\xff.png\toriginal\trear\t-\t1\t0\t0\t0\t0\t0\t0\n")
    with pytest.raises(FormatError, match=r"database.tsv:2: expected UTF-8 text"):
        read_table(path)


# --- item 5: manifest validation and binding ------------------------------------------------------
@pytest.mark.parametrize("edit, expected", [
    (lambda m: m["descriptor"].pop("dim"), r'"descriptor.dim": a positive integer \(the field is missing\)'),
    (lambda m: m["index"].pop("type"), r'"index.type": flat or ivf or ivf-pq \(the field is missing\)'),
    (lambda m: m["descriptor"].update(dim="3"), r'"descriptor.dim": a positive integer, got "\'3\'"'),
    (lambda m: m["counts"].update(vectors=-1), r'"counts.vectors": a non-negative integer'),
    (lambda m: m["intrinsics"]["rear"].update(fx=None), r'"intrinsics.rear.fx": a finite number'),
    (lambda m: m["index"].update(type="ivf"), r'"index.nlist": a positive integer \(the field is missing\)'),
    (lambda m: m.pop("files"), r'"files": an object \(the field is missing\)'),
    (lambda m: m.update(version=1), r"index format version 2 \(rebuild the index\), got '1'"),
    (lambda m: m.update(translation={"translator_checksum": None, "appearances": ["night-0"], "fused_weight": 2}),
     r'"translation.fused_weight": a weight in \[0, 1\]'),
])
def test_every_manifest_field_is_validated_with_a_clear_error(index_dir, edit, expected):
    edit_manifest(index_dir, edit, reseal=False)   # validation comes first: the field is named
    with pytest.raises(FormatError, match=rf"manifest.json: expected {expected}"):
        load_index(index_dir)


def test_an_ivf_manifest_on_a_flat_index_is_refused_before_faiss_sees_it(index_dir):
    edit_manifest(index_dir, lambda m: m["index"].update(type="ivf", nlist=1, nprobe=1))
    with pytest.raises(ConfigMismatchError, match=r'index.faiss: a IndexFlatIP, but the manifest says "type": "ivf"'):
        load_index(index_dir)


def other_model(manifest) -> None:
    manifest["descriptor"].update(spec="test-color-other", checksum="color-v2")


def test_editing_the_model_in_the_manifest_is_detected_and_the_other_model_refused(dataset, index_dir):
    edit_manifest(index_dir, other_model, reseal=False)               # a hand edit: the seal no longer matches
    with pytest.raises(ConfigMismatchError, match="the manifest was changed after the index was built"):
        localize(index_dir, dataset, fakes.query_options(model="test-color-other"))
    edit_manifest(index_dir, other_model)                             # resealed: the vectors still name their model
    with pytest.raises(ConfigMismatchError, match="descriptors.h5 records color-v1"):
        localize(index_dir, dataset, fakes.query_options(model="test-color-other"))


def test_a_file_from_another_build_is_refused(dataset, index_dir, tmp_path):
    other = build_index(dataset, "test-color-other", tmp_path / "other", fakes.index_options())
    (index_dir / "descriptors.h5").write_bytes((other / "descriptors.h5").read_bytes())
    with pytest.raises(ConfigMismatchError, match=r"descriptors.h5: not the file this index was built with"):
        load_index(index_dir)


# --- item 11: a build is whole or absent --------------------------------------------------------
def test_a_build_failing_between_two_writes_leaves_the_previous_index_whole(dataset, index_dir, monkeypatch):
    before = snapshot(index_dir)

    def dying_table(path, table):
        raise KeyboardInterrupt   # index.faiss and descriptors.h5 of the new build are written by now

    monkeypatch.setattr(faiss_index, "write_table", dying_table)
    with pytest.raises(KeyboardInterrupt):
        build_index(dataset, "test-color-other", index_dir, fakes.index_options())
    assert snapshot(index_dir) == before
    assert not [p for p in index_dir.iterdir() if p.name.startswith(".") and p.name != ".mduit-lock"]
    assert load_index(index_dir).manifest["descriptor"]["checksum"] == "color-v1"


REPO = Path(fakes.__file__).resolve().parents[2]


def test_a_build_killed_hard_leaves_the_previous_index_and_the_next_build_cleans_up(dataset, index_dir, tmp_path):
    before = snapshot(index_dir)
    child = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from tests.retrieval import retrieval_fakes as fakes
        from mduit_loc.poses import Pose
        from mduit_loc.retrieval import faiss_index
        from mduit_loc.retrieval.api import build_index
        data = fakes.color_dataset(Path({str(tmp_path / 'data2')!r}),
                                   database=[("ref/rear/a.png", (0, 0, 255), Pose.identity(), 1)], queries=[])
        faiss_index.write_table = lambda path, table: os._exit(9)   # kill -9 between two writes
        build_index(data, "test-color-other", {str(index_dir)!r}, fakes.index_options())
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 9, result.stderr
    leftovers = [p.name for p in index_dir.iterdir() if p.name.startswith(".mduit-staging-")]
    assert len(leftovers) == 1                                  # the dead build's staging folder, nothing else
    assert snapshot(index_dir) == before
    assert load_index(index_dir).manifest["descriptor"]["checksum"] == "color-v1"   # the old set, whole
    build_index(dataset, "test-color", index_dir, fakes.index_options())
    assert not [p for p in index_dir.iterdir() if p.name.startswith(".mduit-staging-") or p.suffix == ".tmp"]


# --- item 12: one writer -------------------------------------------------------------------------
def test_a_second_index_into_a_held_folder_is_refused_before_any_work(dataset, index_dir, monkeypatch):
    monkeypatch.setattr(indexing, "load_descriptor", lambda *a: pytest.fail("no work may start"))
    before = snapshot(index_dir)
    script = ("import sys; from mduit_loc.output_lock import output_lock\n"
              f"with output_lock({str(index_dir)!r}, 'index'):\n    print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputBusyError, match=rf"another mduit-loc index \(pid {holder.pid}\) is writing to"):
            build_index(dataset, "test-color", index_dir, fakes.index_options())
    finally:
        holder.communicate("")
    assert snapshot(index_dir) == before


# --- item 8: names the result files cannot hold --------------------------------------------------
def test_names_with_whitespace_are_refused_before_any_work(dataset, index_dir, tmp_path, monkeypatch):
    from mduit_loc.datasets.images import save_image
    from mduit_loc.retrieval import localize as localize_module

    folder = tmp_path / "queries"
    for name in ("fine.png", "night shot.png", "#first.png"):
        save_image(folder / name, fakes.solid((10, 20, 30)))
    monkeypatch.setattr(localize_module, "compute_descriptors", lambda *a, **k: pytest.fail("no work may start"))
    with pytest.raises(MduitError, match=r"2 query image name\(s\) cannot be written to the hloc pairs and poses "
                                         r"files .*'#first.png', 'night shot.png'"):
        localize(index_dir, [folder], fakes.query_options(), out=tmp_path / "results")
    assert not (tmp_path / "results" / "pairs.txt").exists()
    dataset.database.append(dataset.database[0].__class__("ref/rear/a b.png", "rear", Pose.identity(), "ref", 1))
    monkeypatch.setattr(indexing, "extract_to_h5", lambda *a, **k: pytest.fail("no work may start"))
    with pytest.raises(MduitError, match=r"1 database image name\(s\) cannot be written .*'ref/rear/a b.png'"):
        build_index(dataset, "test-color", tmp_path / "index2", fakes.index_options())


# --- item 13: recorded paths ---------------------------------------------------------------------
def test_paths_recorded_in_an_index_are_relative_and_only_followed_inside_named_folders(dataset, index_dir, tmp_path):
    record = json.loads((index_dir / "manifest.json").read_text())["dataset"]
    assert record["image_root"] == "images" and record["root"] == str(dataset.root.resolve())
    edit_manifest(index_dir, lambda m: m["dataset"].update(root="/etc", nvm_path="passwd"))
    options = fakes.query_options(pose="pnp")
    with pytest.raises(MduitError, match=r"records it at /etc .*pass --data /etc to use that map"):
        localize(index_dir, [dataset.image_path("night/rear/q.png")], options, out=tmp_path / "results")
    assert not (tmp_path / "results" / "pairs.txt").exists()


def test_a_query_into_a_folder_this_process_holds_runs(dataset, index_dir, tmp_path):
    with output_lock(tmp_path / "results", "query"):   # a pipeline holding its folder: the lock is re-entrant
        localize(index_dir, dataset, fakes.query_options(), out=tmp_path / "results")
    assert (tmp_path / "results" / "pairs.txt").is_file()


def test_query_outputs_are_replaced_as_a_set_and_stale_temporaries_go(dataset, index_dir, tmp_path, monkeypatch):
    from mduit_loc.retrieval import outputs

    results = tmp_path / "results"
    localize(index_dir, dataset, fakes.query_options(top_k=1), out=results)
    before = snapshot(results)
    assert sorted(before) == ["pairs.txt", "poses.txt", "queries.csv", "scores.csv", "summary.json"]

    def dying_scores(path, found):
        raise KeyboardInterrupt   # pairs.txt and poses.txt of the new run are written by now

    monkeypatch.setattr(outputs, "write_scores_csv", dying_scores)
    with pytest.raises(KeyboardInterrupt):
        localize(index_dir, dataset, fakes.query_options(top_k=2), out=results)
    assert snapshot(results) == before
    monkeypatch.undo()
    (results / ".scores.csv.4194303-0123abcd.tmp").write_text("left by a killed run")   # pid above pid_max
    (results / "failed_images.txt").write_text("from an earlier run")
    localize(index_dir, dataset, fakes.query_options(top_k=2), out=results)
    assert sorted(p.name for p in results.iterdir()) == [".mduit-lock", "pairs.txt", "poses.txt", "queries.csv",
                                                         "scores.csv", "summary.json"]
    assert len((results / "pairs.txt").read_text().splitlines()) == 2
