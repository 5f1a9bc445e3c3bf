"""The `shardkit` command. Each subcommand parses, calls one library function, and prints; progress bars and
tables live here, not in the library. A ShardkitError becomes one line on stderr and exit status 2."""

import argparse
import contextlib
import logging
import os
import re
import sys
import warnings
from pathlib import Path

from shardkit import __version__
from shardkit.errors import ShardkitError
from shardkit.tasks import TASKS

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a hub: models and data come from packages or paths
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@contextlib.contextmanager
def _progress(description: str, console=None, disable: bool = False):
    """The transient rich progress bar every command uses; yields `update(done, total, extra="", stage=None)`, which
    the library functions call as `progress(done, total)`. `extra` shows beside the bar (training's loss and rate);
    a new `stage` restarts the bar, and its time estimate, under that name."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[extra]}"), console=console, transient=True, disable=disable) as bar:
        task, now = bar.add_task(description, total=None, extra=""), [description]

        def update(done: int, total: int | None, extra: str = "", stage: str | None = None) -> None:
            if stage is not None and stage != now[0]:
                now[0] = stage
                bar.reset(task, total=None, description=stage, extra="")
            bar.update(task, completed=done, total=total, extra=extra)

        yield update


# ---------------------------------------------------------------- argument strings


def parse_mix(text: str) -> dict[str, float]:
    """`identity=0.3,replay=0.1,...` → {task: share}; keys and sums are checked by DataConfig."""
    mix: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ShardkitError(f"--mix: expected key=share pairs like identity=0.3,replay=0.1, got {part!r}")
        if key in mix:
            raise ShardkitError(f"--mix: {key!r} given twice")
        try:
            mix[key] = float(value)
        except ValueError as e:
            raise ShardkitError(f"--mix: share for {key!r} must be a number, got {value.strip()!r}") from e
    if not mix:
        raise ShardkitError("--mix is empty; give key=share pairs like identity=0.5,replay=0.5")
    return mix


def parse_size(text: str | int) -> int:
    """`40k`, `1m`, `2.5k` or a plain integer (underscores allowed) → a positive number of samples."""
    if isinstance(text, int):
        n = text
    else:
        m = re.fullmatch(r"\s*(\d[\d_]*(?:\.\d+)?)\s*([kKmM]?)\s*", str(text))
        if not m:
            raise ShardkitError(f"--size must be 40k, 1m or a whole number of samples, got {text!r}")
        value = float(m.group(1).replace("_", "")) * {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()]
        if value != int(value):
            raise ShardkitError(f"--size {text!r} is not a whole number of samples")
        n = int(value)
    if n < 1:
        raise ShardkitError(f"--size must be at least 1, got {text!r}")
    return n


# ---------------------------------------------------------------- commands


def cmd_build(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from shardkit.benchmark.build import BuildConfig, build

    cfg = BuildConfig(seed=args.seed, max_depth=args.max_depth, per_task=args.per_task, split=args.split)
    with _progress("generating sample audio (first run only)") as progress:
        meta = build(args.out, cfg, manifest=args.manifest, audio_root=args.audio_root, senses_path=args.senses,
                     progress=progress)
    con = Console()
    table = Table(title=f"SHARD → {args.out}  ({meta['n_items']} items, {meta['n_clips']} clips, seed {cfg.seed})")
    for col in ("task", "items", "yes", "no", "hard neg", "random neg"):
        table.add_column(col, justify="right" if col != "task" else "left")
    for task, c in meta["counts"].items():
        table.add_row(task, str(c["n"]), *(str(c.get(k, "–")) for k in ("yes", "no", "hard", "random")))
    con.print(table)
    n_words = meta["n_words"]
    con.print(f"words with items: {len(meta['words_with_items'])} of {n_words}; "
              f"clips without a SHARD word (skipped): {meta['n_clips_without_shard_word']}")
    if meta["unavailable"]:
        con.print(f"[yellow]unavailable audio: {len(meta['unavailable'])} clips[/yellow] (items kept, marked "
                  f"available=false; list in meta.json)")
        for u in meta["unavailable"][:5]:
            con.print(f"  {u['id']}: {u['reason']}")
    con.print(f"sha256 {meta['sha256']}\nwrote shard.jsonl, meta.json, card.md, hf/ (datasets export)")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from shardkit.doctor import run_checks

    with Console(stderr=True).status("checking resources (loads WordNet and torch: ~10 s)"):
        checks = run_checks()
    table = Table(title="shardkit doctor")
    for col in ("resource", "status", "detail", "fix"):
        table.add_column(col, overflow="fold")
    for c in checks:
        status = "[green]ok[/green]" if c.ok else ("[red]MISSING[/red]" if c.required else "[yellow]optional[/yellow]")
        table.add_row(c.name, status, c.detail, c.fix)
    Console(width=max(120, Console().width)).print(table)
    return 1 if any(not c.ok and c.required for c in checks) else 0


def cmd_models(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from shardkit.models.registry import FAMILIES

    table = Table(title="model families (--model FAMILY[:key=value,...])")
    for col in ("family", "what", "options"):
        table.add_column(col, overflow="fold")
    for f in FAMILIES.values():
        opts = "\n".join(f"{k}{' (required)' if k in f.required else ''}: {h}" for k, h in f.options.items())
        table.add_row(f.name, f.description, opts or "–")
    Console().print(table)
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rich.console import Console

    from shardkit.models.adapter import AudioRef, Request
    from shardkit.models.prompts import AUDIO
    from shardkit.models.registry import load_model

    if not args.audio.is_file():
        raise ShardkitError(f"{args.audio}: audio file not found")
    if args.placement == "interleaved" and AUDIO not in args.prompt:
        raise ShardkitError(f"--placement interleaved needs an {AUDIO} marker in --prompt, e.g. \"Is {AUDIO} a dog?\"")
    con = Console(stderr=True)
    with con.status(f"loading {args.model}"):
        model = load_model(args.model, device=args.device, dtype=args.dtype)
    req = Request(args.prompt, (AudioRef(str(args.audio)),), args.placement)
    with con.status("answering"):
        text = model.generate([req], max_new_tokens=args.max_new_tokens)[0]
        score = model.yes_no([req])[0]
    if text.error:
        raise ShardkitError(text.error)
    print(f"answer: {text.value}")
    print(f"yes/no log-odds: {score.value:+.3f}  (log P(yes) - log P(no) at the first answer token)")
    return 0


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def cmd_eval(args: argparse.Namespace) -> int:
    from accelerate import PartialState
    from rich.console import Console

    from shardkit.eval.runner import EvalConfig, run_eval

    state = PartialState(cpu=args.device == "cpu")
    device = args.device if state.num_processes == 1 or args.device == "cpu" else str(state.device)
    cfg = EvalConfig(model=args.model, shard=str(args.shard), placements=_csv(args.placements),
                     tasks=_csv(args.tasks), scoring=args.scoring, control=not args.no_control,
                     audio_controls=_csv(args.audio_controls), cascade=not args.no_cascade, limit=args.limit,
                     batch_size=args.batch_size, seed=args.seed, position=args.marker, cue=not args.no_cue,
                     max_new_tokens=args.max_new_tokens, n_boot=args.n_boot, device=device, dtype=args.dtype)
    label = f"eval [{state.process_index + 1}/{state.num_processes}]" if state.num_processes > 1 else "eval"
    with _progress(f"{label} batches") as progress:
        results = run_eval(cfg, args.out, progress=progress, rank=state.process_index,
                           world=state.num_processes, barrier=state.wait_for_everyone)
    if results is not None:
        from rich.table import Table

        from shardkit.eval.report import fmt

        table = Table(title=f"{cfg.model} on {args.shard} ({cfg.scoring}; 95% clip-bootstrap CIs)")
        for col in ("condition", "task", "n", "errors", "F1", "accuracy", "AUROC", "unparsed", "identity"):
            table.add_column(col, justify="left" if col in ("condition", "task") else "right")
        for cond, tasks in results["metrics"].items():
            for task, m in tasks.items():
                ident = f"{fmt(m.get('identity_accuracy_balanced'))} / {fmt(m.get('identity_accuracy_lenient'))}"
                table.add_row(cond, task, str(m["n"]), str(m["n_error"]), fmt(m.get("f1")), fmt(m.get("accuracy")),
                              fmt(m.get("auroc"), pct=False), fmt(m.get("unparsed_rate")),
                              ident if task == "identity" else "–")
        con = Console()
        con.print(table)
        const = (results.get("baselines", {}).get("identity") or {}).get("best_constant") or {}
        yes = [f"{t} {fmt(b['always_yes'].get('f1'))}" for t, b in results.get("baselines", {}).items()
               if t != "identity"]
        con.print("identity: strict, class-balanced (headline) / lenient (any label of the clip). Baselines: "
                  f"always-yes F1 {', '.join(yes) or '–'}; best constant identity answer "
                  f"{fmt({'value': const.get('balanced')})} ({const.get('answer')!r}).\n"
                  f"Wrote {args.out}/results.json, report.md, samples/, plots/")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from shardkit.eval.compare import compare_runs

    print(compare_runs(args.run_a, args.run_b, n_boot=args.n_boot, seed=args.seed))
    return 0


def cmd_make_data(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from shardkit.train.config import DEFAULT_MIX, DataConfig
    from shardkit.train.folder import make_data, summary

    mix = parse_mix(args.mix) if args.mix else dict(DEFAULT_MIX)
    cfg = DataConfig(size=parse_size(args.size), seed=args.seed, mix=mix, allow_overlap=args.allow_overlap,
                     shard_size=args.shard_size, split=args.split, placement=args.placement)
    if args.manifest is None:
        from shardkit.resources.samples import build_samples

        with _progress("generating sample audio (first run only)") as progress:
            build_samples(0, progress=progress)
    with _progress("writing samples") as progress:
        meta = make_data(args.out, cfg, manifest=args.manifest, audio_root=args.audio_root, progress=progress,
                         exclude=args.exclude_shard)
    con = Console()
    if args.exclude_shard is None:
        con.print("[yellow]note[/yellow]: no --exclude-shard: nothing checks that these clips are not SHARD's "
                  "(the train split of the bundled samples is not)")
    table = Table(title=f"instruction data → {args.out}  ({cfg.size} samples, {len(meta['shards'])} shards, "
                        f"seed {cfg.seed})")
    for col in ("task", "placement", "requested", "realised", "share"):
        table.add_column(col, justify="left" if col in ("task", "placement") else "right")
    for task, m in meta["mix"].items():
        table.add_row(task, "prepended" if task == "replay" else "interleaved", f"{m['requested_share']:g}",
                      str(m["realised"]), f"{m['realised_share']:.3f}")
    con.print(table)
    for line in summary(meta):
        con.print(line)
    con.print("wrote data-*.jsonl, meta.json, README.md, sharegpt/ (LLaMA-Factory dataset_dir; dataset "
              "'shardkit_instruct')")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import yaml
    from rich.console import Console

    from shardkit.train.config import load_config
    from shardkit.train.trainer import train

    keys = ("model", "mode", "lr", "epochs", "max_steps", "batch_size", "grad_accum", "max_length", "seed",
            "log_every", "save_every")
    overrides = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    if args.data is not None:
        overrides["data"] = str(args.data)
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ShardkitError(f"--set {item!r}: expected KEY=VALUE, e.g. --set warmup_steps=20")
        overrides[key.replace("-", "_")] = yaml.safe_load(value)
    cfg = load_config(args.config, overrides)  # every config problem at once, before any model loads
    main_process = os.environ.get("RANK", "0") == "0"  # accelerate launch sets RANK; bars on rank 0 only
    con = Console(stderr=True)
    with _progress("train", console=con, disable=not main_process) as bar:
        summary = train(cfg, args.out, resume=args.resume, cpu=args.cpu,
                        progress=lambda step, total, loss, rate: bar(step, total, f"loss {loss:.4f}  {rate:.1f} "
                                                                                  f"samples/s"),
                        announce=con.print if main_process else None)
    if main_process and summary["losses"]:
        from shardkit.models.registry import trained_spec

        losses = summary["losses"]
        con.print(f"steps {summary['started_at']}→{summary['steps']}: loss {losses[0]:.4f} → {losses[-1]:.4f} "
                  f"(mean of the last 10: {sum(losses[-10:]) / len(losses[-10:]):.4f})")
        spec = trained_spec(cfg.model, args.out)
        con.print(f"wrote {args.out}/final (projector.safetensors{', adapter/' if 'lora' in cfg.mode else ''}), "
                  f"log.jsonl, loss.png" + (f"; evaluate with --model {spec}" if spec else ""))
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from accelerate import PartialState
    from rich.console import Console
    from rich.table import Table

    from shardkit.eval.report import fmt
    from shardkit.study.preset import load_preset, parse_sets
    from shardkit.study.runner import is_done, run_study
    from shardkit.study.stages import plan_study

    overrides = parse_sets(args.set)
    for key in ("device", "dtype"):
        if getattr(args, key):
            overrides[key] = getattr(args, key)
    cfg = load_preset(args.preset, overrides)
    con = Console()
    if args.plan:
        table = Table(title=f"study {cfg.name} → {args.out}")
        for col in ("#", "kind", "name", "stage folder (RUN/stages/)", "status"):
            table.add_column(col)
        for n, st in enumerate(plan_study(cfg).stages.values(), 1):
            table.add_row(str(n), st.kind, st.name, st.id,
                          "[green]done[/green]" if is_done(args.out, st.id) else "to run")
        con.print(table)
        return 0
    state = PartialState(cpu=cfg.device == "cpu")
    main_process = state.is_main_process
    with _progress("study", console=con, disable=not main_process) as bar:
        study = run_study(cfg, args.out, progress=lambda stage, done, total, extra: bar(
                              done, total, extra, f"{stage.kind} {stage.name}"),
                          announce=con.print, rank=state.process_index, world=state.num_processes,
                          barrier=state.wait_for_everyone)
    if study is None:
        return 0
    table = Table(title=f"{cfg.name}: {cfg.model} ({study['scoring']}; 95% clip-bootstrap CIs, %)")
    for col in ("row", "synonym F1", "hypernym F1", "synonym AUROC", "hypernym AUROC", "identity (strict, balanced)"):
        table.add_column(col, justify="left" if col == "row" else "right")
    for row in study["rows"]:
        m = row["metrics"]
        syn, hyp, ident = (m.get(t) or {} for t in TASKS)
        table.add_row(row["name"], fmt(syn.get("f1")), fmt(hyp.get("f1")), fmt(syn.get("auroc"), pct=False),
                      fmt(hyp.get("auroc"), pct=False), fmt(ident.get("identity_accuracy_balanced")))
    con.print(table)
    ran = [s for s in study["stages"] if not s["cached"]]
    con.print(f"{len(ran)} stages run, {len(study['stages']) - len(ran)} cached; {study['seconds'] / 60:.1f} min. "
              f"Wrote {args.out}/report.md, study.json, plots/")
    return 0


def parser() -> argparse.ArgumentParser:
    from shardkit.eval.controls import AUDIO_CONTROLS

    p = argparse.ArgumentParser(prog="shardkit", description=(
        "SHARD: does an audio-LLM's reasoning reach the audio? Build the benchmark, check resources."))
    p.add_argument("--version", action="version", version=f"shardkit {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("build", help="build SHARD (synonym, hypernym, identity items bound to clips)",
                       description="Build SHARD into DIR: shard.jsonl, meta.json, card.md and a datasets export. "
                                   "Without --manifest it uses the bundled sample audio (generated once, offline).",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    b.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    b.add_argument("--seed", type=int, default=0, help="sampling seed: same seed, same bytes")
    b.add_argument("--manifest", type=Path, metavar="FILE",
                   help="clip manifest: JSONL {id, path, labels[, split, start, end]} or an AudioSet segment CSV")
    b.add_argument("--audio-root", type=Path, metavar="DIR",
                   help="folder the manifest's audio paths are relative to (default: the manifest's folder)")
    b.add_argument("--senses", type=Path, metavar="FILE",
                   help="AudioSet label → WordNet synset table (default: the reviewed shardkit/benchmark/senses.tsv)")
    b.add_argument("--split", default="auto", choices=["auto", "test", "train", "all"],
                   help="clips to use; auto = test when the manifest has splits, else all")
    b.add_argument("--max-depth", type=int, default=6, help="deepest hypernym (steps above the word) to ask about")
    b.add_argument("--per-task", type=int, default=4, help="positives per clip and task (as many negatives)")
    b.set_defaults(func=cmd_build)

    d = sub.add_parser("doctor", help="check every offline resource and say how to fix what is missing",
                       description="Check WordNet, the AudioSet ontology and labels, senses.tsv, the sample audio "
                                   "and the model packages. Exit status 1 if a required one is missing.")
    d.set_defaults(func=cmd_doctor)

    m = sub.add_parser("models", help="list model families and their spec options")
    m.set_defaults(func=cmd_models)

    a = sub.add_parser("ask", help="ask a model one question about one clip (prints the answer and yes/no log-odds)",
                       description="The quickest way to poke a model: one clip, one prompt, greedy answer and the "
                                   "yes/no log-odds of its first token.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a.add_argument("--model", default="tiny-ltu", help="model spec, e.g. tiny-ltu or ltu:ckpt=...,llm=... "
                                                       "(see `shardkit models`)")
    a.add_argument("--audio", type=Path, required=True, metavar="FILE", help="audio file (any common format/rate)")
    a.add_argument("--prompt", required=True, help="question; interleaved placement splices audio at <audio>")
    a.add_argument("--placement", default="interleaved", choices=["interleaved", "prepended"],
                   help="prepended = LTU's original (audio before all text; markers dropped)")
    a.add_argument("--max-new-tokens", type=int, default=32)
    a.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    a.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    a.set_defaults(func=cmd_ask)

    e = sub.add_parser("eval", help="evaluate a model on SHARD under each placement; resumable, data-parallel",
                       description="Score SHARD with a model under each placement (and a text-only control), with "
                                   "clip-clustered bootstrap CIs and paired tests. Rerunning the same command resumes. "
                                   "Data-parallel: `accelerate launch --num_processes K -m shardkit eval ...`.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    e.add_argument("--model", default="tiny-ltu", help="model spec (see `shardkit models`)")
    e.add_argument("--shard", type=Path, required=True, metavar="DIR", help="folder from `shardkit build`")
    e.add_argument("--out", type=Path, required=True, metavar="RUN", help="run folder (resumed if it exists)")
    e.add_argument("--placements", default="prepended,interleaved", help="comma list: prepended, interleaved")
    e.add_argument("--tasks", default="synonym,hypernym,identity", help="comma list of SHARD tasks")
    e.add_argument("--scoring", default="yesno", choices=["generate", "yesno", "cloze"],
                   help="yes/no tasks: parse generated text, compare yes/no next-token log-odds, or score the "
                        "candidate as a continuation (for models too small to follow instructions)")
    e.add_argument("--no-control", action="store_true", help="skip the text-only control (gold label as text)")
    e.add_argument("--audio-controls", default=",".join(AUDIO_CONTROLS), metavar="LIST",
                   help="comma list of audio controls asked under each placement: mismatched (a clip of another "
                        "class), silence; '' for none. A score that does not drop with them did not use the audio")
    e.add_argument("--no-cascade", action="store_true",
                   help="skip the cascade: each placement's yes/no questions asked again with the model's own "
                        "identity answer for the clip in words instead of the audio (hearing as the model hears, "
                        "reasoning in text; cascade minus placement is what the audio-to-reasoning bridge loses)")
    e.add_argument("--limit", type=int, help="first N items per task, for a quick look")
    e.add_argument("--batch-size", type=int, default=32, help="questions per forward pass")
    e.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    e.add_argument("--marker", default="middle", choices=["start", "middle", "end"],
                   help="where the <audio> marker stands in each question")
    e.add_argument("--no-cue", action="store_true", help="do not name the modality ('in this audio clip')")
    e.add_argument("--max-new-tokens", type=int, default=24)
    e.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates")
    e.add_argument("--device", default="cpu")
    e.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    e.set_defaults(func=cmd_eval)

    c = sub.add_parser("compare", help="paired tests between two existing runs (same SHARD items)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("run_a", type=Path, metavar="RUN_A")
    c.add_argument("run_b", type=Path, metavar="RUN_B")
    c.add_argument("--n-boot", type=int, default=1000)
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=cmd_compare)

    md = sub.add_parser("make-data", help="generate interleaved instruction data for tuning (sharded JSONL + sharegpt)",
                        description="Generate identity, synonym, hypernym, description and replay (prepended) "
                                    "instruction samples from labelled clips, streaming into sharded JSONL with a "
                                    "sharegpt export for LLaMA-Factory / ms-swift. SHARD's words are kept out of "
                                    "synonym/hypernym questions unless --allow-overlap.",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    md.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    md.add_argument("--size", required=True, help="number of samples: 40k, 1m or an integer")
    md.add_argument("--manifest", type=Path, metavar="FILE",
                    help="clip manifest: JSONL {id, path, labels[, split]} or an AudioSet segment CSV "
                         "(default: the bundled sample audio)")
    md.add_argument("--audio-root", type=Path, metavar="DIR",
                    help="folder the manifest's audio paths are relative to (default: the manifest's folder)")
    md.add_argument("--mix", metavar="K=V,...",
                    help="task shares summing to 1 (default: identity=0.3,synonym=0.25,hypernym=0.25,"
                         "description=0.1,replay=0.1); also synonym_text, hypernym_text: text-only WordNet "
                         "questions about everyday nouns outside SHARD")
    md.add_argument("--placement", default="interleaved", choices=["interleaved", "prepended"],
                    help="where the audio goes in identity, synonym, hypernym and description questions (replay is "
                         "always prepended); prepended builds an LTU-style base")
    md.add_argument("--exclude-shard", type=Path, metavar="DIR",
                    help="a `shardkit build` folder whose clips (by id and audio sha256) are left out of the data")
    md.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    md.add_argument("--allow-overlap", action="store_true",
                    help="let SHARD's words and synsets into synonym/hypernym questions (leaks the test set)")
    md.add_argument("--shard-size", type=int, default=100_000, help="records per JSONL file")
    md.add_argument("--split", default="train", choices=["train", "all"],
                    help="clips to use; train = never SHARD's test split (all clips when the manifest has no splits)")
    md.set_defaults(func=cmd_make_data)
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
    t.add_argument("--model", help="model spec to start from (default tiny-ltu; e.g. tiny-ltu:ckpt=STAGE0_OUT)")
    t.add_argument("--config", type=Path, metavar="FILE", help="YAML of TrainConfig keys; flags override it")
    t.add_argument("--mode", help="projector | projector+lora (default) | encoder+projector+lora")
    t.add_argument("--resume", action="store_true", help="continue from the newest OUT/checkpoint-N")
    t.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    t.add_argument("--lr", type=float, help="learning rate (default 1e-3 for --mode projector, else 1e-4)")
    t.add_argument("--epochs", type=int, help="passes over the data (default 1)")
    t.add_argument("--max-steps", type=int, help="optimizer steps; replaces --epochs")
    t.add_argument("--batch-size", type=int, help="per process and micro-step (default 8)")
    t.add_argument("--grad-accum", type=int, help="micro-steps per optimizer step (default 1)")
    t.add_argument("--max-length", type=int, help="token cutoff incl. audio tokens (default 140); never cuts audio")
    t.add_argument("--seed", type=int, help="default 0")
    t.add_argument("--log-every", type=int, help="steps per log.jsonl line (default 10)")
    t.add_argument("--save-every", type=int, help="steps per checkpoint (default 100; 0: final only)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other TrainConfig key, e.g. --set warmup_steps=20 --set lora_r=16")
    t.set_defaults(func=cmd_train)

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
    st.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="default: the preset's")
    st.add_argument("--plan", action="store_true", help="list the stages and which are done; run nothing")
    st.set_defaults(func=cmd_study)
    return p


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
