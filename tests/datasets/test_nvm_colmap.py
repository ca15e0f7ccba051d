"""NVM_V3 and COLMAP text models: fixtures in the real format, golden writer output, bad input."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mduit_loc.datasets.colmap_text import ColmapImage, find_model_folder, read_colmap_model, write_colmap_text
from mduit_loc.datasets.nvm import NvmCamera, NvmPoints, read_nvm, write_nvm
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.errors import DataNotFoundError, FormatError
from mduit_loc.poses import Pose, qvec_to_rotmat

DATA = Path(__file__).parent / "data"
MINI = DATA / "robotcar_mini"
GOLDEN = DATA / "golden"
HALF = np.sqrt(0.5)
YAW_90 = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])  # quaternion (sqrt(.5), 0, 0, sqrt(.5))


# --- NVM ---------------------------------------------------------------------------------
def test_nvm_fixture_cameras_are_world_to_camera_quaternion_and_centre():
    model = read_nvm(MINI / "3D-models/all-merged/all.nvm")
    first, second = model.cameras
    assert first.name == "./overcast-reference/rear/1417176456183210.png" and first.focal == 400
    np.testing.assert_allclose(first.pose.R, np.eye(3))
    np.testing.assert_allclose(first.pose.t, [-10, -20, -30])  # t = -R c with c = (10, 20, 30)
    np.testing.assert_allclose(second.pose.R, YAW_90, atol=1e-12)
    np.testing.assert_allclose(second.pose.center, [11, 20, 30])
    np.testing.assert_allclose(second.pose.t, [20, -11, -30])  # -R (11, 20, 30) = -(-20, 11, 30)


def test_nvm_fixture_points_and_measurements():
    points = read_nvm(MINI / "3D-models/all-merged/all.nvm").points
    np.testing.assert_array_equal(points.xyz, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(points.rgb, [[255, 0, 0], [0, 255, 0]])
    assert points.rgb.dtype == np.uint8
    np.testing.assert_array_equal(points.observations[0], [[0, 5, -3.5, 4.25]])
    np.testing.assert_array_equal(points.observations[1], [[0, 6, 1, 2], [1, 7, 3, 4]])
    assert read_nvm(MINI / "3D-models/all-merged/all.nvm", with_points=False).points is None


def _golden_nvm_content():
    cameras = [
        NvmCamera("./overcast-reference/rear/1417176456183210.png", 400,
                  Pose.from_qvec_center([1, 0, 0, 0], [10, 20, 30])),
        NvmCamera("./overcast-reference/left/1417176456183210.png", 410.5,
                  Pose.from_qvec_center([HALF, 0, 0, HALF], [11, -2.5, 30])),
    ]
    points = NvmPoints(np.array([[1.0, 2, 3], [4, 5, 6]]), np.array([[255, 0, 0], [0, 255, 0]], np.uint8),
                       [np.array([[0, 5, -3.5, 4.25]]), np.array([[0, 6, 1, 2], [1, 7, 3, 4]])])
    return cameras, points


def test_nvm_writer_matches_golden_file_and_reads_back(tmp_path):
    cameras, points = _golden_nvm_content()
    write_nvm(tmp_path / "all.nvm", cameras, points)
    assert (tmp_path / "all.nvm").read_text() == (GOLDEN / "model.nvm").read_text()
    back = read_nvm(tmp_path / "all.nvm")
    for read, written in zip(back.cameras, cameras):
        assert read.name == written.name and read.focal == written.focal
        assert read.pose.allclose(written.pose, atol=1e-8)
    np.testing.assert_array_equal(back.points.xyz, points.xyz)
    for read, written in zip(back.points.observations, points.observations):
        np.testing.assert_array_equal(read, written)


def test_nvm_without_points_section_reads_as_no_points(tmp_path):
    path = tmp_path / "all.nvm"
    path.write_text("NVM_V3\n\n1\n./overcast-reference/rear/1.png 400 1 0 0 0 1 2 3 0 0\n")
    model = read_nvm(path)
    assert len(model.cameras) == 1 and model.points.xyz.shape == (0, 3)


@pytest.mark.parametrize("body,line,expected", [
    ("NVM_V2\n1\n", 1, "NVM_V3"),
    ("NVM_V3\nx\n", 2, "number of cameras"),
    ("NVM_V3\n1\n./a/rear/1.png 400 1 0 0 0 1 2 3\n", 3, "11 tokens"),
    ("NVM_V3\n1\n./a/rear/1.png 400 1 0 0 zero 1 2 3 0 0\n", 3, "9 numbers"),
    ("NVM_V3\n1\n./a/rear/1.png 400 0 0 0 0 1 2 3 0 0\n", 3, "valid quaternion"),
    ("NVM_V3\n2\n./a/rear/1.png 400 1 0 0 0 1 2 3 0 0\n", None, "file ended"),
    ("NVM_V3\n1\n./a/rear/1.png 400 1 0 0 0 1 2 3 0 0\n\n1\n1 2 3 4 5 6 1 0 0 1\n", 6, "x y z r g b"),
    ("NVM_V3\n1\n./a/rear/1.png 400 1 0 0 0 1 2 3 0 0\n\n1\n1 2 3 4 5 6 1 0 0 1 1 0 0 1 1\n", 6,
     "11 tokens for 1 measurements"),
    ("NVM_V3\n1\n./a/rear/1.png 400 1 0 0 0 1 2 3 0 0\n\n1\n1 2 3 4 5 6 1 1 0 1 1\n", 6, r"image indices in \[0, 1\)"),
    ("NVM_V3\n1\n./a/rear/1.png 400 1 0 0 0 1 2 3 0 0\n\n1\n1 2 three 4 5 6 0\n", 6, "x y z r g b"),
])
def test_bad_nvm_names_file_and_line(tmp_path, body, line, expected):
    path = tmp_path / "all.nvm"
    path.write_text(body)
    with pytest.raises(FormatError, match=expected) as info:
        read_nvm(path)
    assert info.value.line == line and info.value.path == path


def test_missing_nvm_says_where_it_is_expected(tmp_path):
    with pytest.raises(DataNotFoundError, match="all-merged/all.nvm"):
        read_nvm(tmp_path / "all.nvm")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1),
                          st.lists(st.floats(-1e4, 1e4), min_size=3, max_size=3),
                          st.floats(1, 5000)), min_size=1, max_size=4))
def test_nvm_camera_round_trip(cameras):
    import tempfile

    written = [NvmCamera(f"./overcast-reference/rear/{i}.png", focal, Pose.from_qvec_center(q, c))
               for i, (q, c, focal) in enumerate(cameras)]
    with tempfile.TemporaryDirectory() as folder:
        write_nvm(Path(folder) / "all.nvm", written)
        back = read_nvm(Path(folder) / "all.nvm").cameras
    for read, cam in zip(back, written):
        np.testing.assert_allclose(read.pose.R, cam.pose.R, atol=1e-9)
        np.testing.assert_allclose(read.pose.center, cam.pose.center, atol=1e-5)
        assert read.focal == pytest.approx(cam.focal, rel=1e-9)


# --- COLMAP text -------------------------------------------------------------------------
def _golden_colmap_content():
    cameras = {1: Intrinsics(400, 400, 508.222931, 498.187378, 1024, 1024),
               3: Intrinsics(410.5, 400, 500.107605, 511.461426, 1024, 1024)}
    images = [
        ColmapImage("overcast-reference/rear/1417176456183210.jpg", Pose(np.eye(3), [-10, -20, -30]), 1,
                    np.array([[4.5, 5.5], [100.25, 7]]), np.array([1, -1])),
        ColmapImage("overcast-reference/left/1417176456183210.jpg", Pose.from_qvec([HALF, 0, 0, HALF], [20, -11, -30]),
                    3, np.array([[1.0, 2]]), np.array([1])),
    ]
    xyz = np.array([[1.0, 2, 3], [4, 5, 6]])  # point 2 has no observation: not written, as COLMAP does
    rgb = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    return cameras, images, xyz, rgb


def test_colmap_writer_matches_golden_files(tmp_path):
    write_colmap_text(tmp_path, *_golden_colmap_content())
    for name in ("cameras.txt", "images.txt", "points3D.txt"):
        assert (tmp_path / name).read_text() == (GOLDEN / "colmap" / name).read_text(), name


def test_colmap_text_reads_back_with_pycolmap(tmp_path):
    cameras, images, _, _ = _golden_colmap_content()
    write_colmap_text(tmp_path, *_golden_colmap_content())
    model = read_colmap_model(tmp_path)
    assert model.cameras == cameras
    assert model.image_cameras == {images[0].name: 1, images[1].name: 3}
    for image in images:
        assert model.images[image.name].allclose(image.pose, atol=1e-9)
    np.testing.assert_allclose(model.points_xyz, [[1, 2, 3]])


def test_real_format_location_model_fixture():
    """The fixture's 001_aligned model: SIMPLE_RADIAL camera, .png names, as the dataset ships them."""
    model = read_colmap_model(MINI / "3D-models/individual/colmap_reconstructions/001_aligned", with_points=False)
    assert model.cameras == {2: Intrinsics(400, 400, 508.222931, 498.187378, 1024, 1024)}
    first = model.images["overcast-reference/rear/1417176456183210.png"]
    second = model.images["overcast-reference/rear/1417176457183210.png"]
    np.testing.assert_allclose(first.center, [10, 20, 30])
    np.testing.assert_allclose(second.R, YAW_90, atol=1e-12)
    np.testing.assert_allclose(second.center, [11, 20, 30])


def test_find_model_folder_looks_in_the_usual_places(tmp_path):
    assert find_model_folder(tmp_path) is None
    write_colmap_text(tmp_path / "sparse" / "0", *_golden_colmap_content())
    assert find_model_folder(tmp_path) == tmp_path / "sparse" / "0"
    with pytest.raises(DataNotFoundError, match="COLMAP model not found"):
        read_colmap_model(tmp_path)


def test_unreadable_colmap_model_is_a_format_error(tmp_path):
    write_colmap_text(tmp_path, *_golden_colmap_content())
    (tmp_path / "images.txt").write_text("1 1 0 0 0 0 0 0 99 a.jpg\n\n")  # camera 99 does not exist
    with pytest.raises(FormatError, match="CAMERA_ID listed in cameras.txt") as info:
        read_colmap_model(tmp_path)
    assert info.value.path == tmp_path / "images.txt" and info.value.line == 1


def test_binary_colmap_model_is_read_with_pycolmap(tmp_path):
    import pycolmap

    write_colmap_text(tmp_path / "text", *_golden_colmap_content())
    (tmp_path / "bin").mkdir()
    pycolmap.Reconstruction(str(tmp_path / "text")).write_binary(str(tmp_path / "bin"))
    text, binary = read_colmap_model(tmp_path / "text"), read_colmap_model(tmp_path / "bin")
    assert binary.cameras == text.cameras and binary.image_cameras == text.image_cameras
    assert all(binary.images[name].allclose(pose, atol=1e-9) for name, pose in text.images.items())
    np.testing.assert_allclose(binary.points_xyz, text.points_xyz)
    (tmp_path / "bin" / "images.bin").write_bytes(b"\x05")
    with pytest.raises(FormatError, match="readable by pycolmap"):
        read_colmap_model(tmp_path / "bin")


def test_pose_written_by_colmap_writer_matches_nvm_convention(tmp_path):
    """The same camera through NVM (quaternion + centre) and COLMAP (quaternion + t) agrees."""
    rotation = qvec_to_rotmat([0.9, 0.1, -0.3, 0.2])
    pose = Pose(rotation, -rotation @ np.array([3.0, -4, 5]))
    write_nvm(tmp_path / "m.nvm", [NvmCamera("./overcast-reference/rear/1.png", 400, pose)])
    write_colmap_text(tmp_path / "c", {1: Intrinsics(400, 400, 8, 8, 16, 16)},
                      [ColmapImage("overcast-reference/rear/1.jpg", pose, 1)])
    from_nvm = read_nvm(tmp_path / "m.nvm").cameras[0].pose
    from_colmap = read_colmap_model(tmp_path / "c").images["overcast-reference/rear/1.jpg"]
    assert from_nvm.allclose(from_colmap, atol=1e-8) and from_nvm.allclose(pose, atol=1e-8)


# --- issue 12: strict NVM cameras, validated point section, COLMAP text line numbers -------
CAMERA_A = "./overcast-reference/rear/1.png 400 1 0 0 0 1 2 3 0 0"
CAMERA_B = "./overcast-reference/rear/2.png 400 1 0 0 0 4 5 6 0 0"


def _nvm(tmp_path, body: str) -> Path:
    path = tmp_path / "all.nvm"
    path.write_text(body)
    return path


@pytest.mark.parametrize("camera", [
    "./overcast-reference/rear/1.png 400 1 0 0 0 1 2 0 0",        # a centre coordinate missing: fields shifted
    "./overcast-reference/rear/1.png 400 1 0 0 0 1 2 3 0",        # the trailing 0 missing
    "./overcast-reference/rear/1.png 400 1 0 0 0 1 2 3 0 0 0",    # one number too many
])
@pytest.mark.parametrize("with_points", [True, False])
def test_nvm_camera_line_needs_exactly_11_tokens(tmp_path, camera, with_points):
    path = _nvm(tmp_path, f"NVM_V3\n\n2\n{camera}\n{CAMERA_B}\n\n0\n")
    with pytest.raises(FormatError, match=r"all.nvm:4: expected .*\(11 tokens\)"):
        read_nvm(path, with_points=with_points)


@pytest.mark.parametrize("with_points", [True, False])
def test_duplicated_nvm_camera_line_is_refused(tmp_path, with_points):
    extra = _nvm(tmp_path, f"NVM_V3\n\n2\n{CAMERA_A}\n{CAMERA_A}\n{CAMERA_B}\n\n0\n")
    with pytest.raises(FormatError, match=r"all.nvm:5: expected each camera once, but .* on line 4"):
        read_nvm(extra, with_points=with_points)
    counted = _nvm(tmp_path, f"NVM_V3\n\n1\n{CAMERA_A}\n{CAMERA_A}\n\n0\n")  # one more line than declared
    with pytest.raises(FormatError, match=r"all.nvm:5: expected 1 camera lines then the number of points"):
        read_nvm(counted, with_points=with_points)


def test_duplicated_database_image_through_name_spellings(tmp_path):
    from mduit_loc.datasets.robotcar import read_database

    (tmp_path / "3D-models/all-merged").mkdir(parents=True)
    (tmp_path / "3D-models/all-merged/all.nvm").write_text(
        f"NVM_V3\n\n2\n{CAMERA_A}\n{CAMERA_A.replace('./', '').replace('.png', '.jpg')}\n\n0\n")
    with pytest.raises(FormatError, match="are the same image"):
        read_database(tmp_path)


POINT_OK = "1 2 3 255 0 0 1 0 5 -3.5 4.25"


@pytest.mark.parametrize("point,expected", [
    ("nan 2 3 255 0 0 1 0 5 -3.5 4.25", "x y z finite numbers"),
    ("1 inf 3 255 0 0 1 0 5 -3.5 4.25", "x y z finite numbers"),
    ("1 2 1e300 255 0 0 1 0 5 -3.5 4.25", "x y z finite numbers"),
    ("1 2 3 300 0 0 1 0 5 -3.5 4.25", r"r g b integers in \[0, 255\]"),   # was an OverflowError
    ("1 2 3 255 0 0 -1 0 5 -3.5 4.25", "n a non-negative integer"),
    ("1 2 3 255 0 0 99999999999999999999 0 5 -3.5 4.25", "n a non-negative integer"),
    ("1 2 3 255 0 0 1 0 5 nan 4.25", "finite measurements"),
    ("1 2 3 255 0 0 1 0 5.5 -3.5 4.25", "integer image indices"),
    ("1 2 3 255 0 0 1 0 -5 -3.5 4.25", "non-negative integer feature indices"),
    ("1 2 3 255 0 0 1 2 5 -3.5 4.25", r"image indices in \[0, 2\)"),
    ("1 2 3 255 0 0 1 0 5 -3.5", "10 tokens for 1 measurements|11 tokens for 1 measurements"),
])
def test_bad_nvm_point_lines_name_file_and_line(tmp_path, point, expected):
    path = _nvm(tmp_path, f"NVM_V3\n\n2\n{CAMERA_A}\n{CAMERA_B}\n\n2\n{POINT_OK}\n{point}\n\n0\n")
    with pytest.raises(FormatError, match=expected) as info:
        read_nvm(path)
    assert info.value.path == path and info.value.line == 9


def test_extra_or_missing_nvm_point_lines_are_refused(tmp_path):
    extra = _nvm(tmp_path, f"NVM_V3\n\n1\n{CAMERA_A}\n\n1\n{POINT_OK}\n{POINT_OK}\n\n0\n")
    with pytest.raises(FormatError, match=r"all.nvm:8: expected 1 point lines then the number of cameras"):
        read_nvm(extra)
    missing = _nvm(tmp_path, f"NVM_V3\n\n1\n{CAMERA_A}\n\n3\n{POINT_OK}\n{POINT_OK}\n")
    with pytest.raises(FormatError, match=r"all.nvm: expected 3 point lines, but the file ended"):
        read_nvm(missing)


def test_validate_nvm_reads_every_point_and_keeps_none():
    from mduit_loc.datasets.nvm import NvmSummary, validate_nvm

    assert validate_nvm(MINI / "3D-models/all-merged/all.nvm") == NvmSummary(cameras=2, points=2, measurements=3)


def test_nvm_header_variants(tmp_path):
    fixed = _nvm(tmp_path, f"NVM_V3 FixedK 400 512 400 512 0\n\n1\n{CAMERA_A}\n")
    assert len(read_nvm(fixed).cameras) == 1
    for header in ("NVM_V3_R9T", "NVM_V3 junk", "NVM_V3 FixedK 400 nan 400 512 0"):
        with pytest.raises(FormatError, match="all.nvm:1: expected"):
            read_nvm(_nvm(tmp_path, f"{header}\n\n1\n{CAMERA_A}\n"))


def test_nvm_with_bom_crlf_and_a_bad_byte(tmp_path):
    path = tmp_path / "all.nvm"
    text = (MINI / "3D-models/all-merged/all.nvm").read_bytes()
    path.write_bytes(b"\xef\xbb\xbf" + text.replace(b"\n", b"\r\n"))
    original = read_nvm(MINI / "3D-models/all-merged/all.nvm")
    assert [c.name for c in read_nvm(path).cameras] == [c.name for c in original.cameras]
    path.write_bytes(text.replace(b"1 2 3 255", b"1 2 3\xff 255"))
    with pytest.raises(FormatError, match=r"all.nvm:8: expected UTF-8 text"):
        read_nvm(path)


def _colmap_copy(tmp_path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(GOLDEN / "colmap", folder)
    return folder


@pytest.mark.parametrize("name,old,new,line,expected", [
    ("cameras.txt", "1 PINHOLE 1024 1024 400 400 508.222931 498.187378",
     "1 PINHOLE 1024 1024 400 400 508.222931", 3, "4 parameters for a PINHOLE camera"),
    ("cameras.txt", "1 PINHOLE", "1 PINHOLX", 3, "a COLMAP camera model"),
    ("cameras.txt", "1 PINHOLE 1024", "1 PINHOLE 0", 3, "a positive integer image width"),
    ("cameras.txt", "1024 400 400", "1024 nan 400", 3, "numeric camera parameters"),
    ("cameras.txt", "3 PINHOLE", "1 PINHOLE", 4, "each camera id once"),
    ("images.txt", "-10 -20 -30 1 ", "-10 -20 1 ", 4, r"\(10 tokens"),
    ("images.txt", "1 1 0 0 0 -10", "1 nan 0 0 0 -10", 4, "7 numbers QW QX QY QZ TX TY TZ"),
    ("images.txt", "1 1 0 0 0 -10", "1 0 0 0 0 -10", 4, "a valid quaternion"),
    ("images.txt", "left/1417176456183210.jpg", "rear/1417176456183210.jpg", 6, "each image name once"),
    ("images.txt", "4.5 5.5 1 100.25 7 -1", "4.5 5.5 1 100.25 7", 5, "a multiple of 3 tokens"),
    ("images.txt", "4.5 5.5 1", "inf 5.5 1", 5, "finite POINTS2D numbers"),
    ("images.txt", "4.5 5.5 1", "4.5 5.5 1.5", 5, "POINT3D_IDs that are integers"),
    ("images.txt", "100.25 7 -1", "100.25 7 9", 5, "POINT3D_IDs listed in points3D.txt, but 9 is not"),
    ("images.txt", "overcast-reference/rear", "overcast-r\udcffeference/rear", 4, "UTF-8 text"),
    ("points3D.txt", "1 1 2 3 255", "1 1 2 nan 255", 3, "numbers X Y Z and ERROR"),
    ("points3D.txt", "255 0 0 0 1 0", "256 0 0 0 1 0", 3, r"R G B integers in \[0, 255\]"),
    ("points3D.txt", " 1 0 2 0", " 1 0 2", 3, "an even number of at least 8 tokens"),
    ("points3D.txt", " 1 0 2 0", " 1 0 7 0", 3, "track IMAGE_IDs listed in images.txt"),
    ("points3D.txt", " 1 0 2 0", " 1 1 2 0", 3, "a track that matches images.txt"),
])
def test_bad_colmap_text_names_file_and_line(tmp_path, name, old, new, line, expected):
    folder = _colmap_copy(tmp_path)
    text = (folder / name).read_text()
    assert old in text
    (folder / name).write_bytes(text.replace(old, new, 1).encode("utf-8", "surrogateescape"))
    with pytest.raises(FormatError, match=expected) as info:
        read_colmap_model(folder)
    assert info.value.path == folder / name and info.value.line == line


def test_colmap_text_without_points_skips_points3d(tmp_path):
    folder = _colmap_copy(tmp_path)
    (folder / "points3D.txt").write_text("garbage\n")
    model = read_colmap_model(folder, with_points=False)
    assert sorted(model.images) == ["overcast-reference/left/1417176456183210.jpg",
                                    "overcast-reference/rear/1417176456183210.jpg"]
    with pytest.raises(FormatError, match="points3D.txt:1"):
        read_colmap_model(folder)


def test_colmap_text_camera_models_match_pycolmap():
    import pycolmap

    from mduit_loc.datasets.colmap_text import _CAMERA_MODELS, _ONE_FOCAL

    for model in pycolmap.CameraModelId.__members__.values():
        name = str(model).split(".")[-1]
        if name in ("INVALID", "EQUIRECTANGULAR"):
            continue
        camera = pycolmap.Camera(model=model, width=10, height=10)
        assert _CAMERA_MODELS[name] == len(camera.params_info.split(",")), name
        assert (name in _ONE_FOCAL) == (len(camera.focal_length_idxs()) == 1), name
