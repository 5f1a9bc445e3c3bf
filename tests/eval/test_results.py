"""results.json (eval/results.py): merged records become the item arrays the metrics read (clip = cluster, unparsed =
NaN prediction, audio failure = error), and `build_results` turns a hand-built run into every number it reports —
metrics, breakdowns, accuracy given identification, the paired tests and their Holm family, the baselines — checked
against values worked out on paper, JSON-safe and the same bytes every time."""

import json

import numpy as np
import pytest

from shardkit.eval.config import EvalConfig
from shardkit.eval.results import arrays, baselines, build_results, json_safe

META = {"sha256": "ab" * 32}
PROVENANCE = {"shardkit": "0.0.test", "git_commit": "0" * 40}
N_BOOT = 200


def record(item_id, clip, gold, *, parsed=None, lenient=None, score=None, word="dog", task="hypernym", depth=None,
           negative_kind=None, error=None):
    """A yes/no record with the fields the runner writes and results.py reads."""
    return {"item_id": item_id, "clip_id": clip, "task": task, "word": word, "gold": gold, "depth": depth,
            "negative_kind": negative_kind, "score": score, "parsed": parsed, "parsed_lenient": lenient,
            "correct": None if error else parsed == gold, "correct_lenient": None if error else lenient == gold,
            "error": error}


def scored(item_id, clip, gold, score, **kw):
    """A yes/no record under yes/no scoring: the answer is the sign of the log-odds."""
    answer = "yes" if score > 0 else "no"
    return record(item_id, clip, gold, parsed=answer, lenient=answer, score=score, **kw)


def named(clip, word, correct, **ways):
    """An identity record: the strict verdict and any other way it was judged (correct_string=..., ...)."""
    return {"item_id": f"identity-{clip}", "clip_id": clip, "task": "identity", "word": word, "gold": word,
            "depth": None, "negative_kind": None, "score": None, "parsed": word if correct else "a hum",
            "correct": correct, "error": None, **ways}


def prepended_hypernym():
    """Seven items on three clips. By hand: tp 2 (h1, h5), fp 2 (h2, h4), fn 1 (h3), tn 1 (h6); h7's audio failed.
    Precision 2/4, recall 2/3, F1 2·2/(2·2 + 2 + 1) = 4/7, accuracy 3/6. AUROC: positives 2.0, −1.0, 0.5 against
    negatives 1.0, 0.3, −0.5 win 3 + 0 + 2 of 9 pairs = 5/9."""
    return [
        scored("h1", "c1", "yes", 2.0, depth=1),
        scored("h2", "c1", "no", 1.0, negative_kind="hard"),
        scored("h3", "c2", "yes", -1.0, depth=2),
        scored("h4", "c2", "no", 0.3, negative_kind="random"),
        scored("h5", "c3", "yes", 0.5, depth=1, word="bell"),
        scored("h6", "c3", "no", -0.5, negative_kind="hard", word="bell"),
        record("h7", "c3", "yes", depth=3, word="bell", error="audio: could not decode c3.wav"),
    ]


def interleaved_hypernym():
    """The same items, every one answered right (h7 heard this time)."""
    return [scored(r["item_id"], r["clip_id"], r["gold"], 1.0 if r["gold"] == "yes" else -1.0, word=r["word"],
                   depth=r["depth"], negative_kind=r["negative_kind"]) for r in prepended_hypernym()]


def worked_run() -> dict:
    """Two placements × (hypernym, identity). Identity, strict: prepended names c1 and c3 (dog 1/2, bell 1/1:
    plain 2/3, class-balanced 3/4), interleaved c1 and c2 (dog 2/2, bell 0/1: plain 2/3, balanced 1/2)."""
    return {
        ("prepended", "hypernym"): prepended_hypernym(),
        ("interleaved", "hypernym"): interleaved_hypernym(),
        ("prepended", "identity"): [
            named("c1", "dog", True, correct_string=True, correct_lenient=True, correct_embedding=None),
            named("c2", "dog", False, correct_string=False, correct_lenient=True, correct_embedding=None),
            named("c3", "bell", True, correct_string=False, correct_lenient=True, correct_embedding=None)],
        ("interleaved", "identity"): [
            named("c1", "dog", True, correct_string=True, correct_lenient=True, correct_embedding=None),
            named("c2", "dog", True, correct_string=True, correct_lenient=True, correct_embedding=None),
            named("c3", "bell", False, correct_string=False, correct_lenient=True, correct_embedding=None)],
    }


def config(**kw) -> EvalConfig:
    base = {"placements": ("prepended", "interleaved"), "tasks": ("hypernym", "identity"), "audio_controls": (),
            "cascade": False, "control": False, "n_boot": N_BOOT}
    return EvalConfig(**{**base, **kw})


def values(summary: dict, names: tuple[str, ...]) -> dict:
    return {k: summary[k]["value"] for k in names}


# ---------------------------------------------------------------- arrays


def test_arrays_make_unparsed_answers_nan_and_read_the_lenient_parse_on_request():
    clips = {"c1": 0, "c2": 1}
    rows = [record("s1", "c2", "yes", parsed="yes", lenient="yes", task="synonym"),
            record("s2", "c1", "no", parsed=None, lenient="no", task="synonym"),  # "maybe": unparsed strictly
            record("s3", "c1", "yes", task="synonym", error="audio: missing file")]
    d = arrays(rows, clips, cloze=False)
    assert d["cluster"].tolist() == [1, 0, 0]
    assert d["error"].tolist() == [False, False, True]
    assert d["gold"].tolist() == [True, False, True]
    np.testing.assert_array_equal(d["pred"], [1.0, np.nan, np.nan])
    assert "score" not in d  # generated answers carry no score to rank
    np.testing.assert_array_equal(arrays(rows, clips, cloze=False, lenient=True)["pred"], [1.0, 0.0, np.nan])


def test_arrays_keep_scores_only_when_every_heard_item_has_one_and_cloze_makes_no_decisions():
    clips = {"c1": 0, "c2": 1}
    rows = [scored("s1", "c1", "yes", 1.5, task="synonym"), scored("s2", "c2", "no", -0.25, task="synonym"),
            record("s3", "c2", "no", task="synonym", error="audio: missing file")]
    d = arrays(rows, clips, cloze=False)
    assert d["score"].tolist() == [1.5, -0.25, 0.0]  # the failed item's missing score is a placeholder, never read
    assert d["pred"].tolist()[:2] == [1.0, 0.0]
    cloze = arrays(rows, clips, cloze=True)
    assert "pred" not in cloze and cloze["score"].tolist() == [1.5, -0.25, 0.0]
    unscored = rows[:2] + [record("s4", "c1", "yes", parsed="yes", task="synonym")]  # heard, but no score
    assert "score" not in arrays(unscored, clips, cloze=False)


def test_identity_arrays_carry_the_gold_word_and_only_the_ways_the_records_were_judged():
    rows = worked_run()[("prepended", "identity")]
    d = arrays(rows, {"c1": 0, "c2": 1, "c3": 2}, cloze=False)
    assert d["correct"].tolist() == [True, False, True]
    assert d["group"].tolist() == ["dog", "dog", "bell"]
    assert d["correct_string"].tolist() == [True, False, False]
    assert d["correct_lenient"].tolist() == [True, True, True]
    assert "correct_embedding" not in d  # None in every record: that way was not used
    assert "gold" not in d and "pred" not in d


def test_arrays_of_no_records_are_empty_yes_no_arrays():
    d = arrays([], {}, cloze=False)
    assert set(d) == {"cluster", "error", "gold", "pred"}  # no score: there is nothing to rank
    assert all(len(v) == 0 for v in d.values())


# ---------------------------------------------------------------- json_safe


def test_json_safe_turns_nan_into_null_numpy_into_python_and_keys_into_strings():
    out = json_safe({1: (np.float64(0.5), float("nan")), "x": [np.int64(3), {"y": np.float32("nan")}],
                     "ok": np.bool_(True), "s": "text", "none": None})
    assert out == {"1": [0.5, None], "x": [3, {"y": None}], "ok": True, "s": "text", "none": None}
    assert type(out["x"][0]) is int and type(out["1"][0]) is float and type(out["ok"]) is bool
    json.dumps(out, allow_nan=False)


# ---------------------------------------------------------------- build_results


def test_build_results_gives_the_hand_computed_metrics_of_a_worked_run():
    res = build_results(config(), worked_run(), META, PROVENANCE)
    hyp = res["metrics"]["prepended"]["hypernym"]
    assert (hyp["n"], hyp["n_error"], hyp["n_clips"]) == (6, 1, 3)  # h7's failed audio is counted, not scored
    assert values(hyp, ("precision", "recall", "f1", "accuracy", "unparsed_rate", "auroc")) == pytest.approx(
        {"precision": 0.5, "recall": 2 / 3, "f1": 4 / 7, "accuracy": 0.5, "unparsed_rate": 0.0, "auroc": 5 / 9})
    assert "lenient" not in hyp  # yes/no scoring: nothing is parsed leniently
    perfect = res["metrics"]["interleaved"]["hypernym"]
    assert (perfect["n"], perfect["n_error"]) == (7, 0)
    assert values(perfect, ("f1", "accuracy", "auroc")) == {"f1": 1.0, "accuracy": 1.0, "auroc": 1.0}
    assert perfect["accuracy"]["ci"] == [1.0, 1.0]
    ident = res["metrics"]["prepended"]["identity"]
    assert set(ident) == {"n", "n_error", "n_clips", "identity_accuracy", "identity_accuracy_balanced",
                          "identity_accuracy_string", "identity_accuracy_lenient"}
    assert values(ident, ("identity_accuracy", "identity_accuracy_balanced", "identity_accuracy_string",
                          "identity_accuracy_lenient")) == pytest.approx(
        {"identity_accuracy": 2 / 3, "identity_accuracy_balanced": 0.75, "identity_accuracy_string": 1 / 3,
         "identity_accuracy_lenient": 1.0})
    assert res["metrics"]["interleaved"]["identity"]["identity_accuracy_balanced"]["value"] == 0.5


def test_build_results_breaks_yes_no_down_by_word_depth_and_negative_kind():
    res = build_results(config(), worked_run(), META, PROVENANCE)
    b = res["breakdowns"]["prepended"]["hypernym"]
    assert set(b) == {"word", "depth", "negative_kind"} and "identity" not in res["breakdowns"]["prepended"]
    assert {w: s["accuracy"]["value"] for w, s in b["word"].items()} == {"bell": 1.0, "dog": 0.25}
    assert b["word"]["bell"]["n_error"] == 1
    # depth: positives only (recall); depth 3 holds only h7, whose audio failed, so recall is undefined there
    assert {d: s["recall"]["value"] for d, s in b["depth"].items()} == {"1": 1.0, "2": 0.0, "3": None}
    assert (b["depth"]["3"]["n"], b["depth"]["3"]["n_error"], b["depth"]["3"]["recall"]["ci"]) == (0, 1, [None, None])
    # negative kind: negatives only; h2 (hard) and h4 (random) were answered yes, h6 (hard) no
    assert {k: s["accuracy"]["value"] for k, s in b["negative_kind"].items()} == {"hard": 0.5, "random": 0.0}
    assert set(b["negative_kind"]["hard"]) == {"n", "n_error", "n_clips", "accuracy", "unparsed_rate"}


def test_build_results_conditions_reasoning_on_the_same_clips_identification():
    res = build_results(config(), worked_run(), META, PROVENANCE)
    pre = res["conditioned"]["prepended"]["hypernym"]  # prepended named c1 and c3, not c2
    assert (pre["identified"]["accuracy"], pre["identified"]["n"], pre["identified"]["n_clips"]) == (0.75, 4, 2)
    assert (pre["not_identified"]["accuracy"], pre["not_identified"]["n"]) == (0.0, 2)  # h3, h4: both wrong
    assert pre["not_identified"]["ci"] == [0.0, 0.0] and pre["n_unknown"] == 0
    inter = res["conditioned"]["interleaved"]["hypernym"]  # interleaved named c1 and c2: h1–h4 vs h5–h7
    assert (inter["identified"]["n"], inter["not_identified"]["n"]) == (4, 3)
    assert set(res["conditioned"]) == {"prepended", "interleaved"}


def test_build_results_tests_each_pair_with_mcnemar_or_the_balanced_sign_flip_under_holm():
    res = build_results(config(), worked_run(), META, PROVENANCE)
    hyp, ident = res["tests"]  # task order: synonym, hypernym, identity
    assert (hyp["task"], hyp["a"], hyp["b"], hyp["n"], hyp["n_error"]) == ("hypernym", "prepended", "interleaved",
                                                                         6, 1)
    assert {k: v["value"] for k, v in hyp["diffs"].items()} == pytest.approx(
        {"precision": 0.5, "recall": 1 / 3, "f1": 3 / 7, "accuracy": 0.5, "unparsed_rate": 0.0, "auroc": 4 / 9})
    m = hyp["mcnemar"]  # h2, h3, h4 wrong → right, nothing right → wrong: exact p = 2 · 0.5³
    assert (m["method"], m["right_to_wrong"], m["wrong_to_right"], m["n"]) == ("McNemar, exact", 0, 3, 6)
    assert m["p"] == pytest.approx(0.25)
    assert ident["task"] == "identity" and ident["diffs"]["identity_accuracy_balanced"]["value"] == pytest.approx(-0.25)
    assert ident["diffs"]["identity_accuracy"]["value"] == pytest.approx(0.0)
    s = ident["mcnemar"]  # c2 (weight 1/2, dog has two clips) gained, c3 (weight 1, bell) lost: |±½ ± 1| ≥ ½ always
    assert (s["method"], s["right_to_wrong"], s["wrong_to_right"], s["p"]) == ("sign-flip, exact", 1, 1, 1.0)
    assert [t["mcnemar"]["p_holm"] for t in res["tests"]] == pytest.approx([0.5, 1.0])  # Holm over 0.25 and 1


def test_build_results_stamps_the_run_and_is_json_safe_and_byte_identical():
    constant = {"answer": "dog", "n_tried": 2, "balanced": 0.5, "micro": 2 / 3}
    res = build_results(config(), worked_run(), META, PROVENANCE, constant=constant)
    assert res["shard_sha256"] == META["sha256"] and res["versions"] == PROVENANCE
    assert (res["n_items"], res["n_clips"], res["control"]) == (20, 3, None)
    assert res["config"]["placements"] == ["prepended", "interleaved"] and res["config"]["n_boot"] == N_BOOT
    assert res["decoding"] == {"strategy": "greedy", "do_sample": False, "max_new_tokens": 24,
                               "yes_no_threshold": "log-odds 0"}
    assert res["baselines"] == {"identity": {"best_constant": constant}}  # no items given: no yes/no baselines
    text = json.dumps(res, allow_nan=False)  # every NaN became null
    again = build_results(config(), worked_run(), META, PROVENANCE, constant=constant)
    assert json.dumps(again, allow_nan=False) == text


def test_build_results_under_cloze_ranks_scores_and_makes_no_decisions():
    merged = {k: [{**r, "parsed": None, "parsed_lenient": None} if r["task"] != "identity" else r for r in rows]
              for k, rows in worked_run().items()}
    res = build_results(config(scoring="cloze"), merged, META, PROVENANCE)
    hyp = res["metrics"]["prepended"]["hypernym"]
    assert set(hyp) == {"n", "n_error", "n_clips", "auroc"} and hyp["auroc"]["value"] == pytest.approx(5 / 9)
    # AUROC within each word: dog's positives 2.0, −1.0 against negatives 1.0, 0.3 win 2 of 4; bell 1 of 1
    words = res["breakdowns"]["prepended"]["hypernym"]
    assert list(words) == ["word"] and {w: s["auroc"]["value"] for w, s in words["word"].items()} == {
        "bell": 1.0, "dog": 0.5}
    assert res["conditioned"] == {}
    t = res["tests"][0]
    assert t["task"] == "hypernym" and t["mcnemar"]["method"] == "paired clip bootstrap of AUROC"
    assert t["mcnemar"]["right_to_wrong"] is None and set(t["diffs"]) == {"auroc"}
    assert t["diffs"]["auroc"]["value"] == pytest.approx(4 / 9)
    assert res["decoding"]["yes_no_threshold"].startswith("none: cloze scores")


def test_generated_answers_get_a_lenient_summary_and_a_control_is_tested_only_against_its_placement():
    def rows():  # s2 and s3 unparsed strictly ("no, well, yes"), read leniently as the right answer
        return [record("s1", "c1", "yes", parsed="yes", lenient="yes", task="synonym"),
                record("s2", "c1", "no", parsed=None, lenient="no", task="synonym"),
                record("s3", "c2", "yes", parsed=None, lenient="yes", task="synonym"),
                record("s4", "c2", "no", parsed="no", lenient="no", task="synonym")]

    cfg = config(scoring="generate", tasks=("synonym",), audio_controls=("silence",), control=True)
    assert cfg.conditions == ("prepended", "interleaved", "prepended-silence", "interleaved-silence", "text")
    res = build_results(cfg, {(c, "synonym"): rows() for c in cfg.conditions}, META, PROVENANCE)
    s = res["metrics"]["prepended"]["synonym"]  # strict: tp 1, fn 1 (s3), unparsed negative s2 a false positive
    assert values(s, ("precision", "recall", "f1", "accuracy", "unparsed_rate")) == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "accuracy": 0.5, "unparsed_rate": 0.5})
    assert "auroc" not in s
    assert values(s["lenient"], ("accuracy", "unparsed_rate")) == {"accuracy": 1.0, "unparsed_rate": 0.0}
    assert res["breakdowns"]["prepended"]["synonym"]["depth"] == {}  # synonym items have no depth
    assert {(t["a"], t["b"]) for t in res["tests"]} == {
        ("prepended", "interleaved"), ("prepended", "prepended-silence"), ("prepended", "text"),
        ("interleaved", "interleaved-silence"), ("interleaved", "text")}
    assert res["control"] == "text" and res["conditioned"] == {}  # no identity was asked
    assert res["decoding"]["yes_no_threshold"] == "parsed answer"


# ---------------------------------------------------------------- baselines


def test_baselines_without_items_or_a_constant_are_empty():
    assert baselines({}, {}, {}, None, N_BOOT, 0) == {}


def test_baselines_score_always_yes_and_candidate_only_and_pair_each_condition_with_the_prior():
    """Hypernym: every candidate is a yes once and a no once, so any function of the candidate (its prior, WordNet
    depth or length) ranks at chance, 0.5. Synonym: each candidate once, yes candidates shorter."""
    def item(i, clip, candidate, answer):
        task = "hypernym" if i.startswith("h") else "synonym"
        return {"id": i, "task": task, "candidate": candidate, "answer": answer, "clip": {"id": clip}}

    items = {"hypernym": [item("h1", "c1", "animal", "yes"), item("h2", "c1", "instrument", "no"),
                          item("h3", "c2", "instrument", "yes"), item("h4", "c2", "animal", "no")],
             "synonym": [item("s1", "c1", "hound", "yes"), item("s2", "c1", "kitten", "no"),
                         item("s3", "c2", "gong", "yes"), item("s4", "c2", "trumpet", "no")]}

    def model(scores, errors=()):
        return [{"item_id": i["id"], "clip_id": i["clip"]["id"], "gold": i["answer"], "score": s,
                 "error": "audio: missing file" if i["id"] in errors else None}
                for i, s in zip(items["hypernym"], scores, strict=True)]

    merged = {("prepended", "hypernym"): model([2.0, -1.0, 1.0, -2.0]),  # AUROC 1 against the prior's 0.5
              ("text", "hypernym"): model([2.0, -1.0, 1.0, None], errors=("h4",)),  # h4 left out of both
              ("interleaved", "hypernym"): model([2.0, None, 1.0, -2.0])}  # generated: a heard item with no score
    out = baselines(merged, {"c1": 0, "c2": 1}, items, None, N_BOOT, 0)
    assert set(out) == {"synonym", "hypernym"}
    hyp = out["hypernym"]
    assert set(hyp["always_yes"]) == {"n", "n_error", "n_clips", "precision", "recall", "f1", "accuracy"}
    assert values(hyp["always_yes"], ("precision", "recall", "f1", "accuracy")) == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "accuracy": 0.5})
    assert {k: hyp[f"candidate_{k}"]["auroc"]["value"] for k in ("prior", "generality", "shortness")} == {
        "prior": 0.5, "generality": 0.5, "shortness": 0.5}
    assert set(hyp["vs_candidate_prior"]) == {"prepended", "text"}
    assert hyp["vs_candidate_prior"]["prepended"]["diff"] == pytest.approx(0.5)
    assert hyp["vs_candidate_prior"]["text"]["diff"] == pytest.approx(0.5)
    assert set(hyp["vs_candidate_prior"]["text"]) == {"diff", "ci", "p", "mde"}
    syn = out["synonym"]  # each candidate seen once: the in-sample prior is the answer itself
    assert syn["candidate_prior"]["auroc"]["value"] == 1.0
    assert syn["candidate_shortness"]["auroc"]["value"] == 1.0  # hound, gong (5, 4) vs kitten, trumpet (6, 7)
    assert syn["vs_candidate_prior"] == {}
