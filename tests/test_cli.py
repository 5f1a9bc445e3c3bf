"""The command line as a user meets it: every subcommand is listed and explains its options, defaults included."""

import os
import subprocess
import sys


def run(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "shardkit", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


def test_help_lists_commands():
    r = run("--help")
    assert r.returncode == 0 and "build" in r.stdout and "doctor" in r.stdout
    r = run("build", "--help")
    assert r.returncode == 0 and "--manifest" in r.stdout and "--audio-root" in r.stdout and "default: 0" in r.stdout


def test_help_says_no_default_twice_and_never_none():
    from shardkit.cli import parser

    subs = next(a for a in parser()._actions if a.dest == "command").choices
    for name, sub in subs.items():
        text = " ".join(sub.format_help().split())
        assert "(default: None)" not in text and "(default: False)" not in text, name
    build = " ".join(subs["build"].format_help().split())
    assert "(default: the manifest's folder) --senses" in build  # a help that names its default gets no second one
    assert "(default: 4)" in build


def test_defaults_are_the_config_classes():
    """Each option's default is its config field's: change a library default and the CLI follows."""
    from shardkit.benchmark.config import BuildConfig
    from shardkit.cli import parser
    from shardkit.eval.config import EvalConfig
    from shardkit.train.config import DataConfig

    p = parser()
    e = p.parse_args(["eval", "--shard", "s", "--out", "o"])
    assert (e.model, e.scoring, e.batch_size, e.seed, e.marker, e.max_new_tokens, e.n_boot, e.device, e.dtype) == (
        EvalConfig.model, EvalConfig.scoring, EvalConfig.batch_size, EvalConfig.seed, EvalConfig.position,
        EvalConfig.max_new_tokens, EvalConfig.n_boot, EvalConfig.device, EvalConfig.dtype)
    assert tuple(e.placements.split(",")) == EvalConfig.placements and tuple(e.tasks.split(",")) == EvalConfig.tasks
    assert tuple(e.audio_controls.split(",")) == EvalConfig.audio_controls
    b = p.parse_args(["build", "--out", "o"])
    assert (b.seed, b.split, b.max_depth, b.per_task) == (BuildConfig.seed, BuildConfig.split, BuildConfig.max_depth,
                                                          BuildConfig.per_task)
    d = p.parse_args(["make-data", "--out", "o", "--size", "8"])
    assert (d.placement, d.seed, d.shard_size, d.split) == (DataConfig.placement, DataConfig.seed,
                                                            DataConfig.shard_size, DataConfig.split)
    t = p.parse_args(["train", "--out", "o"])
    assert t.mode is None and t.batch_size is None  # unset: TrainConfig (after --config FILE) decides


def test_attention_takes_its_defaults_from_its_config_and_refuses_bad_layers(capsys):
    from shardkit.cli import main, parser
    from shardkit.eval.config import AttentionConfig

    a = parser().parse_args(["attention", "--shard", "s", "--out", "o"])
    assert (a.model, a.batch_size, a.n_boot, a.marker, a.dtype) == (
        AttentionConfig.model, AttentionConfig.batch_size, AttentionConfig.n_boot, AttentionConfig.position,
        AttentionConfig.dtype)
    assert tuple(a.placements.split(",")) == AttentionConfig.placements
    assert main(["attention", "--shard", "s", "--out", "o", "--layers", "1,top"]) == 2
    assert capsys.readouterr().err.strip() == ("shardkit attention: error: --layers takes a comma list of layer "
                                               "numbers, got '1,top'")
