""""Did you mean": the closest name, or the list to choose from."""

from shardkit.suggest import choose_from, did_you_mean


def test_did_you_mean_names_the_closest_choice_or_nothing():
    assert did_you_mean("warmup_step", ["warmup_steps", "lr"]) == " (did you mean 'warmup_steps'?)"
    assert did_you_mean("zzz", ["warmup_steps", "lr"]) == ""
    assert did_you_mean("positon", ["position"], cutoff=0.5) == " (did you mean 'position'?)"
    assert did_you_mean(3, ["3x"]) == " (did you mean '3x'?)"  # non-string names from YAML are compared as text


def test_choose_from_offers_two_close_names_or_every_choice():
    assert choose_from("synonim", ["synonym", "synonyms", "hypernym"]) == "; did you mean synonym or synonyms?"
    assert choose_from("tiny-lt", ["tiny-ltu", "qwen2-audio"]) == "; did you mean tiny-ltu?"
    assert choose_from("xyz", {"b": 1, "a": 2}) == "; choose from a, b"
