import pytest

from shardkit.eval.scoring import parse_yes_no


@pytest.mark.parametrize(("text", "expected"), [
    ("Yes, there is no doubt", ("yes", "yes")),  # lenient takes the first yes/no, not the last
    ("I think no.", (None, "no")),
    ("No, yes.", ("no", "no")),
    ("Well... YES", (None, "yes")),
    ("", (None, None)),
    (None, (None, None)),
    ("Nope", (None, None)),  # whole words only
    ("yesterday", (None, None)),
    ("It is a dog.", (None, None)),
])
def test_parse_yes_no_strict_first_word_lenient_first_whole_word(text, expected):
    assert parse_yes_no(text) == expected
