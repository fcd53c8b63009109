"""A method option given as text that is no number says so in words, for whole and real options alike."""
import pytest

from stf_engine import StfError
from stf_engine.core.options import Option, parse

DECLARED = {"window": Option(31, 1, 255), "rate": Option(0.5, 0.0, 1.0)}


@pytest.mark.parametrize("given, said", [
    ("window=abc", "option window=abc for method 'm': 'abc' is not a whole number"),
    ("rate=fast", "option rate=fast for method 'm': 'fast' is not a number"),
    ("window=2.5", "option window=2.5 for method 'm': expected a whole number"),
])
def test_text_that_is_no_number_is_named_with_what_the_option_takes(given, said):
    with pytest.raises(StfError) as refused:
        parse(DECLARED, given, "method 'm'")
    assert str(refused.value) == f"{said}; valid options: window=31 (integer 1..255), rate=0.5 (number 0..1)"


def test_numbers_given_as_text_or_numbers_keep_the_options_type():
    assert parse(DECLARED, {"window": " 7 ", "rate": 1}, "method 'm'") == {"window": 7, "rate": 1.0}
    assert isinstance(parse(DECLARED, {"rate": 1}, "method 'm'")["rate"], float)
