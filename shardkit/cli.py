"""The `shardkit` command: the options of every subcommand (argparse) and `main`, which runs one of `commands.py`
and turns a ShardkitError into one line on stderr and exit status 2."""

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from shardkit import __version__
from shardkit.benchmark.config import SPLITS, BuildConfig
from shardkit.errors import ShardkitError
from shardkit.eval.config import SCORINGS, AttentionConfig, EvalConfig
from shardkit.names import DTYPES, PLACEMENTS, POSITIONS
from shardkit.train.config import DEFAULT_MIX, MODES, DataConfig, TrainConfig
from shardkit.train.config import SPLITS as DATA_SPLITS

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a hub: models and data come from packages or paths
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from shardkit.commands import (  # noqa: E402  (after the offline switches)
    cmd_ask,
    cmd_attention,
    cmd_build,
    cmd_compare,
    cmd_doctor,
    cmd_eval,
    cmd_export,
    cmd_make_data,
    cmd_models,
    cmd_study,
    cmd_train,
)


class Help(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` with each option's default, except where there is none, the option is a flag (off unless given)
    or its help already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.nargs == 0 or "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def parser() -> argparse.ArgumentParser:
    """Every subcommand's options. Defaults are the fields of the config class each command fills (a dataclass's
    class attribute is its field's default), so the library and `--help` cannot disagree."""
    p = argparse.ArgumentParser(prog="shardkit", description=(
        "SHARD: does an audio-LLM's reasoning reach the audio? Build the benchmark, check resources."))
    p.add_argument("--version", action="version", version=f"shardkit {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _build(sub)
    _doctor(sub)
    _models(sub)
    _ask(sub)
    _eval(sub)
    _attention(sub)
    _compare(sub)
    _export(sub)
    _make_data(sub)
    _train(sub)
    _study(sub)
    return p


def _build(sub) -> None:
    b = sub.add_parser("build", help="build SHARD (synonym, hypernym, identity items bound to clips)",
                       description="Build SHARD into DIR: shard.jsonl, meta.json, card.md and a datasets export. "
                                   "Without --manifest it uses the bundled sample audio (generated once, offline).",
                       formatter_class=Help)
    b.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    b.add_argument("--seed", type=int, default=BuildConfig.seed, help="sampling seed: same seed, same bytes")
    b.add_argument("--manifest", type=Path, metavar="FILE",
                   help="clip manifest: JSONL {id, path, labels[, split, start, end]} or an AudioSet segment CSV")
    b.add_argument("--audio-root", type=Path, metavar="DIR",
                   help="folder the manifest's audio paths are relative to (default: the manifest's folder)")
    b.add_argument("--senses", type=Path, metavar="FILE",
                   help="AudioSet label → WordNet synset table (default: the reviewed shardkit/benchmark/senses.tsv)")
    b.add_argument("--split", default=BuildConfig.split, choices=SPLITS,
                   help="clips to use; auto = test when the manifest has splits, else all")
    b.add_argument("--max-depth", type=int, default=BuildConfig.max_depth,
                   help="deepest hypernym (steps above the word) to ask about")
    b.add_argument("--per-task", type=int, default=BuildConfig.per_task,
                   help="positives per clip and task (as many negatives)")
    b.set_defaults(func=cmd_build)


def _doctor(sub) -> None:
    d = sub.add_parser("doctor", help="check every offline resource and say how to fix what is missing",
                       description="Check WordNet, the AudioSet ontology and labels, senses.tsv, the sample audio "
                                   "and the model packages. Exit status 1 if a required one is missing.")
    d.set_defaults(func=cmd_doctor)


def _models(sub) -> None:
    m = sub.add_parser("models", help="list model families and their spec options")
    m.set_defaults(func=cmd_models)


def _ask(sub) -> None:
    a = sub.add_parser("ask", help="ask a model one question about one clip (prints the answer and yes/no log-odds)",
                       description="The quickest way to poke a model: one clip, one prompt, greedy answer and the "
                                   "yes/no log-odds of its first token.",
                       formatter_class=Help)
    a.add_argument("--model", default="tiny-ltu", help="model spec, e.g. tiny-ltu or ltu:ckpt=...,llm=... "
                                                       "(see `shardkit models`)")
    a.add_argument("--audio", type=Path, required=True, metavar="FILE", help="audio file (any common format/rate)")
    a.add_argument("--prompt", required=True, help="question; interleaved placement splices audio at <audio>")
    a.add_argument("--placement", default="interleaved", choices=PLACEMENTS,
                   help="prepended = LTU's original (audio before all text; markers dropped)")
    a.add_argument("--max-new-tokens", type=int, default=32)
    a.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    a.add_argument("--dtype", default="float32", choices=DTYPES)
    a.set_defaults(func=cmd_ask)


def _eval(sub) -> None:
    e = sub.add_parser("eval", help="evaluate a model on SHARD under each placement; resumable, data-parallel",
                       description="Score SHARD with a model under each placement (and a text-only control), with "
                                   "clip-clustered bootstrap CIs and paired tests. Rerunning the same command resumes. "
                                   "Data-parallel: `accelerate launch --num_processes K -m shardkit eval ...`.",
                       formatter_class=Help)
    e.add_argument("--model", default=EvalConfig.model, help="model spec (see `shardkit models`)")
    e.add_argument("--shard", type=Path, required=True, metavar="DIR", help="folder from `shardkit build`")
    e.add_argument("--out", type=Path, required=True, metavar="RUN", help="run folder (resumed if it exists)")
    e.add_argument("--placements", default=",".join(EvalConfig.placements), help="comma list: prepended, interleaved")
    e.add_argument("--tasks", default=",".join(EvalConfig.tasks), help="comma list of SHARD tasks")
    e.add_argument("--scoring", default=EvalConfig.scoring, choices=SCORINGS,
                   help="yes/no tasks: parse generated text, compare yes/no next-token log-odds, or score the "
                        "candidate as a continuation (for models too small to follow instructions)")
    e.add_argument("--no-control", action="store_true", help="skip the text-only control (gold label as text)")
    e.add_argument("--audio-controls", default=",".join(EvalConfig.audio_controls), metavar="LIST",
                   help="comma list of audio controls asked under each placement: mismatched (a clip of another "
                        "class), silence; '' for none. A score that does not drop with them did not use the audio")
    e.add_argument("--no-cascade", action="store_true",
                   help="skip the cascade: each placement's yes/no questions asked again with the model's own "
                        "identity answer for the clip in words instead of the audio (hearing as the model hears, "
                        "reasoning in text; cascade minus placement is what the audio-to-reasoning bridge loses)")
    e.add_argument("--limit", type=int, help="first N items per task, for a quick look")
    e.add_argument("--batch-size", type=int, default=EvalConfig.batch_size, help="questions per forward pass")
    e.add_argument("--seed", type=int, default=EvalConfig.seed, help="bootstrap seed")
    e.add_argument("--marker", default=EvalConfig.position, choices=POSITIONS,
                   help="where the <audio> marker stands in each question")
    e.add_argument("--no-cue", action="store_true", help="do not name the modality ('in this audio clip')")
    e.add_argument("--max-new-tokens", type=int, default=EvalConfig.max_new_tokens)
    e.add_argument("--n-boot", type=int, default=EvalConfig.n_boot, help="bootstrap replicates")
    e.add_argument("--device", default=EvalConfig.device)
    e.add_argument("--dtype", default=EvalConfig.dtype, choices=DTYPES)
    e.set_defaults(func=cmd_eval)


def _attention(sub) -> None:
    a = sub.add_parser("attention", help="where attention goes: the share the answer and the candidate give the audio",
                       formatter_class=Help,
                       description="For each placement, the share of attention that each yes/no question's answer "
                                   "position and candidate tokens give to the first token (attention sink), the "
                                   "text before the audio, the audio and the text after it, per layer, averaged "
                                   "over SHARD items with 95% clip-bootstrap CIs; the interleaved − prepended "
                                   "audio share per layer with its paired CI. Writes OUT/attention.json and "
                                   "OUT/plots/ (audio_by_layer.png, roles.png).")
    a.add_argument("--model", default=AttentionConfig.model,
                   help="model spec: tiny-ltu, ltu or qwen2-audio (see `shardkit models`)")
    a.add_argument("--shard", type=Path, required=True, metavar="DIR", help="folder from `shardkit build`")
    a.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    a.add_argument("--placements", default=",".join(AttentionConfig.placements), help="comma list")
    a.add_argument("--tasks", default=",".join(AttentionConfig.tasks), help="comma list of yes/no tasks")
    a.add_argument("--limit", type=int, help="first N items of each task (default: all)")
    a.add_argument("--layers", help="comma list of layers to measure, from 0 (default: all)")
    a.add_argument("--per-head", action="store_true", help="also write each head's shares")
    a.add_argument("--marker", default=AttentionConfig.position, choices=POSITIONS,
                   help="where the <audio> marker stands in interleaved questions")
    a.add_argument("--batch-size", type=int, default=AttentionConfig.batch_size)
    a.add_argument("--n-boot", type=int, default=AttentionConfig.n_boot)
    a.add_argument("--seed", type=int, default=AttentionConfig.seed)
    a.add_argument("--device", default=AttentionConfig.device, help="cpu or cuda[:N]")
    a.add_argument("--dtype", default=AttentionConfig.dtype, choices=DTYPES)
    a.set_defaults(func=cmd_attention)


def _compare(sub) -> None:
    c = sub.add_parser("compare", help="paired tests between two existing runs (same SHARD items)",
                       formatter_class=Help)
    c.add_argument("run_a", type=Path, metavar="RUN_A")
    c.add_argument("run_b", type=Path, metavar="RUN_B")
    c.add_argument("--n-boot", type=int, default=EvalConfig.n_boot)
    c.add_argument("--seed", type=int, default=EvalConfig.seed)
    c.set_defaults(func=cmd_compare)


def _export(sub) -> None:
    x = sub.add_parser("export", help="write a finished eval run as lm-eval or lmms-eval results and samples",
                       description="Write RUN (a `shardkit eval` output, or an eval stage of a study) in the files "
                                   "lm-eval or lmms-eval write: results keyed 'metric,none' with stderr, configs, "
                                   "versions, n-samples, and one samples file per condition × task with doc_id, "
                                   "target, arguments, resps, filtered_resps and the doc/prompt/target hashes, the "
                                   "clip's audio path in each doc (lmms-eval: as input_media too).",
                       formatter_class=Help)
    x.add_argument("run", type=Path, metavar="RUN")
    x.add_argument("--format", choices=("lm-eval", "lmms-eval"), default="lm-eval")
    x.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output folder (files go to DIR/<model>/, as those harnesses write them)")
    x.add_argument("--shard", type=Path, metavar="DIR",
                   help="the run's SHARD folder, when the path it recorded does not resolve from here")
    x.set_defaults(func=cmd_export)


def _make_data(sub) -> None:
    md = sub.add_parser("make-data", help="generate interleaved instruction data for tuning (sharded JSONL + sharegpt)",
                        description="Generate identity, synonym, hypernym, description and replay (prepended) "
                                    "instruction samples from labelled clips, streaming into sharded JSONL with a "
                                    "sharegpt export for LLaMA-Factory / ms-swift. SHARD's words are kept out of "
                                    "synonym/hypernym questions unless --allow-overlap.",
                        formatter_class=Help)
    md.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    md.add_argument("--size", required=True, help="number of samples: 40k, 1m or an integer")
    md.add_argument("--manifest", type=Path, metavar="FILE",
                    help="clip manifest: JSONL {id, path, labels[, split]} or an AudioSet segment CSV "
                         "(default: the bundled sample audio)")
    md.add_argument("--audio-root", type=Path, metavar="DIR",
                    help="folder the manifest's audio paths are relative to (default: the manifest's folder)")
    md.add_argument("--mix", metavar="K=V,...",
                    help=f"task shares summing to 1 (default: {','.join(f'{k}={v:g}' for k, v in DEFAULT_MIX.items())})"
                         "; also synonym_text, hypernym_text: text-only WordNet questions about everyday nouns "
                         "outside SHARD")
    md.add_argument("--placement", default=DataConfig.placement, choices=PLACEMENTS,
                    help="where the audio goes in identity, synonym, hypernym and description questions (replay is "
                         "always prepended); prepended builds an LTU-style base")
    md.add_argument("--exclude-shard", type=Path, metavar="DIR",
                    help="a `shardkit build` folder whose clips (by id and audio sha256) are left out of the data")
    md.add_argument("--seed", type=int, default=DataConfig.seed, help="same seed, same bytes")
    md.add_argument("--allow-overlap", action="store_true",
                    help="let SHARD's words and synsets into synonym/hypernym questions (leaks the test set)")
    md.add_argument("--shard-size", type=int, default=DataConfig.shard_size, help="records per JSONL file")
    md.add_argument("--split", default=DataConfig.split, choices=DATA_SPLITS,
                    help="clips to use; train = never SHARD's test split (all clips when the manifest has no splits)")
    md.set_defaults(func=cmd_make_data)


def _train(sub) -> None:
    t = sub.add_parser("train", help="tune a model on instruction data (projector, LoRA); resumable, data-parallel",
                       description="Train the projector (stage 0: --mode projector), LoRA on the language model's "
                                   "q/v projections, or encoder + projector + LoRA, on a `shardkit make-data` folder. "
                                   "Writes OUT/checkpoint-N/, OUT/final/, log.jsonl and loss.png; --resume continues "
                                   "from the newest checkpoint. Data-parallel: `accelerate launch --num_processes K "
                                   "-m shardkit train ...`. Defaults follow LTU (see TrainConfig), except that "
                                   "each batch holds samples of similar length (less padding; --set "
                                   "group_by_length=false for LTU's random batches).")
    t.add_argument("--out", type=Path, required=True, metavar="OUT", help="run folder")
    t.add_argument("--data", type=Path, metavar="DIR", help="`shardkit make-data` folder")
    t.add_argument("--model",
                   help=f"model spec to start from (default {TrainConfig.model}; e.g. tiny-ltu:ckpt=STAGE0_OUT)")
    t.add_argument("--config", type=Path, metavar="FILE", help="YAML of TrainConfig keys; flags override it")
    t.add_argument("--mode", choices=MODES,
                   help=f"what trains (default {TrainConfig.mode}); projector is LTU's stage 0")
    t.add_argument("--resume", action="store_true", help="continue from the newest OUT/checkpoint-N")
    t.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    t.add_argument("--lr", type=float, help="learning rate (default 1e-3 for --mode projector, else 1e-4)")
    t.add_argument("--epochs", type=int, help=f"passes over the data (default {TrainConfig.epochs})")
    t.add_argument("--max-steps", type=int, help="optimizer steps; replaces --epochs")
    t.add_argument("--batch-size", type=int, help=f"per process and micro-step (default {TrainConfig.batch_size})")
    t.add_argument("--grad-accum", type=int, help=f"micro-steps per optimizer step (default {TrainConfig.grad_accum})")
    t.add_argument("--max-length", type=int,
                   help=f"token cutoff incl. audio tokens (default {TrainConfig.max_length}); never cuts audio")
    t.add_argument("--seed", type=int, help=f"default {TrainConfig.seed}")
    t.add_argument("--log-every", type=int, help=f"steps per log.jsonl line (default {TrainConfig.log_every})")
    t.add_argument("--save-every", type=int,
                   help=f"steps per checkpoint (default {TrainConfig.save_every}; 0: final only)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other TrainConfig key, e.g. --set warmup_steps=20 --set lora_r=16; --set recompute=1 "
                        "recomputes every decoder layer in backward and returns freed blocks to the system: "
                        "same weights, less memory, a forward more")
    t.set_defaults(func=cmd_train)


def _study(sub) -> None:
    from shardkit.study.preset import preset_names

    st = sub.add_parser("study", help="the paper's study: original, zero-shot, FT-Small, FT-Large and ablations",
                        description="Run a study preset end to end: build SHARD, make instruction data, tune, "
                                    "evaluate every condition and ablation, and write RUN/report.md, study.json and "
                                    "plots/. Every stage is cached under RUN/stages/ by the hash of its config: rerun "
                                    "the same command to resume; change one key and only what depends on it reruns. "
                                    f"Shipped presets: {', '.join(preset_names())} (shardkit/study/presets/).")
    st.add_argument("--preset", required=True, metavar="NAME|FILE", help="shipped preset name or a YAML file")
    st.add_argument("--out", type=Path, required=True, metavar="RUN", help="study folder (resumed if it exists)")
    st.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a preset key, e.g. --set tuning.large=2560 --set ablations.lora_rank=[4,16]; "
                         "--set train_seeds=[0,1,2] reruns every tuning per training seed and checks each verdict "
                         "across them")
    st.add_argument("--device", help="cpu or cuda[:N] (default: the preset's)")
    st.add_argument("--dtype", choices=DTYPES, help="default: the preset's")
    st.add_argument("--plan", action="store_true", help="list the stages and which are done; run nothing")
    st.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="run up to N independent stages at once, each in its own process with cores/N threads (every "
                         "core for a long stage with no other beside it); the weights are those of --jobs 1, the "
                         "scores too to the fifth decimal (default: 1; `make demo` runs 2)")
    st.set_defaults(func=cmd_study)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import transformers

    transformers.utils.logging.disable_progress_bar()  # our own bars and spinners report progress
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)  # peft → HF
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        return args.func(args)
    except ShardkitError as e:
        print(f"shardkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
