"""Image names stored in a dataset stay inside its image folder (issue 12 item 13)."""
from __future__ import annotations

import pytest

from mduit_loc.datasets.types import LocalizationDataset
from mduit_loc.errors import MduitError


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "night/../../x.jpg", ""])
def test_a_name_leading_out_of_the_image_folder_is_refused(tmp_path, name):
    dataset = LocalizationDataset(tmp_path, tmp_path / "images", [], [])
    with pytest.raises(MduitError, match="leads out of the image folder"):
        dataset.image_path(name)
    assert dataset.image_path("night/rear/1.jpg") == tmp_path / "images" / "night" / "rear" / "1.jpg"
    assert dataset.image_path("a..b/c.jpg").name == "c.jpg"   # '..' inside a component is a plain name
