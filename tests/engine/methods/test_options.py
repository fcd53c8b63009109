"""Method options are declared, typed and range-checked in one engine function that every front end calls."""
import pytest

from stf_engine import StfError, describe_options, parse_options


def test_options_are_typed_from_text_lists_and_mappings():
    assert parse_options("starfm", "window=15, classes=6") == {"window": 15, "classes": 6}
    assert parse_options("starfm", ["window=15", "uncertainty_fine=0.01"]) == {"window": 15, "uncertainty_fine": 0.01}
    assert parse_options("starfm", {"window": "9"}) == {"window": 9}
    assert parse_options("starfm", "") == {} and parse_options("delta", None) == {}


@pytest.mark.parametrize("given, problem", [
    ("windw=15", "unknown option 'windw'"),
    ("window=-3", "option window=-3 for method 'starfm': out of range"),
    ("window=2.5", "expected a whole number"),
    ("classes=many", "option classes=many"),
    ("window", "key=value pairs"),
    ("window=inf", "option window=inf for method 'starfm': expected a finite number"),
    ("uncertainty_fine=nan", "option uncertainty_fine=nan for method 'starfm': expected a finite number"),
])
def test_bad_options_name_the_valid_ones_and_their_ranges(given, problem):
    with pytest.raises(StfError) as raised:
        parse_options("starfm", given)
    message = str(raised.value)
    assert problem in message
    if "key=value" not in problem:
        assert "window=31 (integer 1..255)" in message and "\n" not in message


def test_methods_refuse_options_they_do_not_declare():
    for method in ("delta", "ganstfm"):
        with pytest.raises(StfError, match=f"unknown option 'window' for method '{method}'; valid options: "
                                           "residual=false"):
            parse_options(method, "window=3")
    assert describe_options("cubic") == "residual=false (true/false)"
    assert parse_options("cubic", "residual=yes") == {"residual": True}


def test_unknown_method_names_the_methods():
    with pytest.raises(StfError, match="unknown method .starfn.; choose one of: auto, cubic, delta, starfm"):
        parse_options("starfn", "window=3")
