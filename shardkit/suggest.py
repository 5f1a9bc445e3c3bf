""""Did you mean": the one way a bad name in a spec, preset, config or option is answered."""

import difflib
from collections.abc import Iterable


def did_you_mean(word: object, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def choose_from(word: object, choices: Iterable[str]) -> str:
    """'; did you mean a or b?' for the two closest choices, or '; choose from ...' listing them all."""
    choices = list(choices)
    close = difflib.get_close_matches(str(word), choices, n=2)
    return f"; did you mean {' or '.join(close)}?" if close else f"; choose from {', '.join(sorted(choices))}"
