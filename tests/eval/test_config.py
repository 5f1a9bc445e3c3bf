"""EvalConfig: its defaults, every problem at once in one line, and the conditions a run asks, in their order."""

from dataclasses import fields

import pytest

from shardkit.config import load_fields
from shardkit.errors import ShardkitError
from shardkit.eval.config import RUN_CONTROL, SCORINGS, EvalConfig
from shardkit.names import PLACEMENTS, TASKS


def test_defaults():
    cfg = EvalConfig()
    assert (cfg.model, cfg.shard, cfg.scoring) == ("tiny-ltu", "", "yesno")
    assert cfg.placements == PLACEMENTS and cfg.tasks == TASKS
    assert cfg.audio_controls == ("mismatched", "silence") and cfg.control and cfg.cascade
    assert (cfg.limit, cfg.batch_size, cfg.seed, cfg.position, cfg.cue, cfg.max_new_tokens, cfg.n_boot, cfg.device,
            cfg.dtype) == (None, 32, 0, "middle", True, 24, 1000, "cpu", "float32")
    assert SCORINGS == ("generate", "yesno", "cloze") and set(RUN_CONTROL) <= {f.name for f in fields(EvalConfig)}


def test_conditions_are_placements_then_audio_controls_then_cascades_then_text():
    assert EvalConfig().conditions == ("prepended", "interleaved",
                                       "prepended-mismatched", "prepended-silence",
                                       "interleaved-mismatched", "interleaved-silence",
                                       "prepended-cascade", "interleaved-cascade", "text")
    cfg = EvalConfig(placements=("interleaved",), audio_controls=("silence",), control=False)
    assert cfg.conditions == ("interleaved", "interleaved-silence", "interleaved-cascade")
    assert EvalConfig(placements=(), audio_controls=()).conditions == ("text",)


def test_cascades_only_where_identity_and_a_yes_no_task_are_both_asked():
    assert EvalConfig(tasks=("hypernym", "identity")).cascades == ("prepended-cascade", "interleaved-cascade")
    assert EvalConfig(tasks=("identity", "synonym"), placements=("interleaved",)).cascades == ("interleaved-cascade",)
    assert EvalConfig(tasks=("identity",)).cascades == ()
    assert EvalConfig(tasks=("synonym", "hypernym")).cascades == ()
    assert EvalConfig(cascade=False).cascades == ()
    assert "prepended-cascade" not in EvalConfig(tasks=("identity",)).conditions


def test_every_problem_in_one_line():
    with pytest.raises(ShardkitError) as e:
        EvalConfig(placements=("sideways",), audio_controls=("noise",), tasks=(), position="left", dtype="int8",
                   scoring="guess", limit=0, batch_size=0)
    assert str(e.value).split("; ") == [
        "placements must be among prepended, interleaved, got sideways",
        "audio_controls must be among mismatched, silence, got noise",
        "tasks must be among synonym, hypernym, identity, got ",
        "position must be one of start, middle, end, got 'left'",
        "dtype must be one of float32, bfloat16, float16, got 'int8'",
        "scoring must be one of generate, yesno, cloze, got 'guess'",
        "limit must be >= 1, got 0",
        "batch_size, n_boot and max_new_tokens must be >= 1"]
    with pytest.raises(ShardkitError) as e:
        EvalConfig(placements=(), control=False)
    assert str(e.value) == ("nothing to evaluate: give one or more placements, or the text control; "
                            "audio_controls replace the audio of a placement: give one or more placements")


def test_loaded_config_names_unknown_keys_with_the_class_checks():
    with pytest.raises(ShardkitError) as e:
        load_fields(EvalConfig, {"placement": "interleaved", "cascade": "no", "n_boot": 0}, "eval")
    assert str(e.value) == ("eval: unknown key 'placement' (did you mean 'placements'?); cascade='no': must be bool; "
                            "batch_size, n_boot and max_new_tokens must be >= 1")
    cfg = load_fields(EvalConfig, {"placements": "interleaved", "tasks": "synonym, identity"}, "eval")
    assert cfg == EvalConfig(placements=("interleaved",), tasks=("synonym", "identity"))
    assert cfg.conditions == ("interleaved", "interleaved-mismatched", "interleaved-silence", "interleaved-cascade",
                              "text")
