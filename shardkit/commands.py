"""What each `shardkit` subcommand does: parse its options, call one library function, print. Progress bars and
tables live here, not in the library; `cli.py` declares the options and turns a ShardkitError into one line."""

import argparse
import contextlib
import os
import re

from shardkit.errors import ShardkitError
from shardkit.names import TASKS


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

    from shardkit.benchmark.build import build
    from shardkit.benchmark.config import BuildConfig

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
    for col in ("family", "what", "options", "tested on / tunable"):
        table.add_column(col, overflow="fold")
    for f in FAMILIES.values():
        opts = "\n".join(f"{k}{' (required)' if k in f.required else ''}: {h}" for k, h in f.options.items())
        tunable = f"tunable: `shardkit train --model {f.name}...`, then {f.tuned_key}=OUT" if f.tuned_key else ""
        table.add_row(f.name, f.description, opts or "–", "\n".join(filter(None, (f.tested, tunable))) or "–")
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


def cmd_attention(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.console import Console

    from shardkit.eval.attention import measure
    from shardkit.eval.config import AttentionConfig

    layers = None
    if args.layers:
        try:
            layers = tuple(int(x) for x in _csv(args.layers))
        except ValueError:
            raise ShardkitError(f"--layers takes a comma list of layer numbers, got {args.layers!r}") from None
    cfg = AttentionConfig(model=args.model, shard=str(args.shard), placements=_csv(args.placements),
                          tasks=_csv(args.tasks), limit=args.limit, layers=layers, per_head=args.per_head,
                          batch_size=args.batch_size, n_boot=args.n_boot, seed=args.seed, position=args.marker,
                          device=args.device, dtype=args.dtype)
    with _progress("attention: questions") as progress:
        result = measure(cfg, args.out, progress=progress)
    console = Console()
    for name, p in result["placements"].items():
        audio = p["answer"]["audio"]
        peak = int(np.nanargmax(audio["mean"]))
        console.print(f"{name}: {p['n']} questions; the answer position gives the audio "
                      f"{100 * np.nanmean(audio['mean']):.1f}% of its attention on average over layers, most in "
                      f"layer {p['layers'][peak]} ({100 * audio['mean'][peak]:.1f}% "
                      f"[{100 * audio['lo'][peak]:.1f}, {100 * audio['hi'][peak]:.1f}])")
    console.print(f"wrote {args.out}/attention.json and {args.out}/plots/")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from accelerate import PartialState
    from rich.console import Console

    from shardkit.eval.config import EvalConfig
    from shardkit.eval.runner import run_eval

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


def cmd_export(args: argparse.Namespace) -> int:
    from shardkit.eval.export import export_run

    files = export_run(args.run, args.out, args.format, args.shard)
    print(f"wrote {files[0]} and {len(files) - 1} samples file(s) beside it ({args.format})")
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
                        progress=lambda done, total, *step: bar(done, total, f"loss {step[0]:.4f}  {step[1]:.1f} "
                                                                            f"samples/s" if step else "EWC Fisher"),
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

    if args.jobs < 1:
        raise ShardkitError(f"--jobs {args.jobs}: must be 1 or more")
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
                          barrier=state.wait_for_everyone, jobs=args.jobs)
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
