"""What the study concludes (study/verdicts.py): a verdict needs the paired test and the CI on one side, and it
stands only where every training seed reaches it. The tests themselves run end to end in test_runner.py."""

from shardkit.study.verdicts import across_seeds, verdict


def test_a_verdict_stands_only_where_every_seed_reaches_it():
    ref = [{"what": "a", "verdict": "supported", "why": "p 0.01"}, {"what": "b", "verdict": "undetermined",
                                                                    "why": "p 0.4"}]
    same = across_seeds(ref, {"1": [{"verdict": "supported"}, {"verdict": "undetermined"}]}, 0)
    assert [r["verdict"] for r in same] == ["supported", "undetermined"] and "every training seed" in same[0]["why"]
    split = across_seeds(ref, {"1": [{"verdict": "undetermined"}, {"verdict": "contradicted"}],
                               "2": [{"verdict": "supported"}, {"verdict": "undetermined"}]}, 0)
    assert [r["verdict"] for r in split] == ["undetermined", "undetermined"]
    assert split[0]["why"].startswith("the training seeds disagree (seed 0 supported, seed 1 undetermined, seed 2 "
                                      "supported)")
    assert split[1]["by_seed"] == {"0": "undetermined", "1": "contradicted", "2": "undetermined"}
    assert across_seeds(ref, {}, 0) is ref  # one seed: the verdicts as they are


def test_verdict_needs_the_test_and_the_ci_on_one_side():
    test = {"method": "McNemar, exact", "p_holm": 0.01}
    up = {"value": 0.12, "ci": [0.05, 0.2], "mde": 0.06}
    assert verdict(up, test, +1)[0] == "supported"
    assert verdict(up, test, -1)[0] == "contradicted"
    assert verdict(up, {**test, "p_holm": 0.2}, +1)[0] == "undetermined"  # the CI alone is not the test
    straddles = {"value": 0.12, "ci": [-0.01, 0.2], "mde": 0.15}
    v, why = verdict(straddles, test, +1)  # McNemar on accuracy passed, but the F1 CI includes 0
    assert v == "undetermined" and "15.0 points" in why
    assert verdict(None, test, +1) == ("undetermined", "not measured")


def test_a_difference_that_never_varies_has_no_power_to_quote():
    """Both conditions name no clip: the bootstrap's MDE is NaN (None in study.json), never "detects 0.0 points"."""
    for mde in (None, float("nan")):
        v, why = verdict({"value": 0.0, "ci": [0.0, 0.0], "mde": mde}, {"p_holm": 1.0}, -1)
        assert v == "undetermined" and "power cannot be judged" in why and "detects" not in why
