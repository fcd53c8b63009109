"""A truth image or an uncertainty map without a folder for the error maps: one line, in the command line's words,
naming only what was asked for."""
import pytest

from stf_engine import FusionRequest, StfError
from stf_engine.fusion.check import check_rules
from devkit.synthetic import scene_set


@pytest.mark.parametrize("truth, uncertainty, said", [
    (True, False, "--truth needs a folder for the error maps: add --error-maps DIR"),
    (False, True, "--uncertainty needs a folder for the error maps: add --error-maps DIR"),
    (True, True, "--truth and --uncertainty need a folder for the error maps: add --error-maps DIR"),
])
def test_error_maps_asked_for_without_their_folder_name_what_was_asked(tmp_path, truth, uncertainty, said):
    paths = scene_set(tmp_path, height=16, width=16, ratio=4, dtype="float32")
    request = FusionRequest(coarse_target=paths["coarse"], fine_reference=paths["fine"], method="delta",
                            output=str(tmp_path / "out.tif"), truth=paths["truth"] if truth else None,
                            uncertainty=uncertainty)
    with pytest.raises(StfError) as refused:
        check_rules(request)
    assert str(refused.value) == said
