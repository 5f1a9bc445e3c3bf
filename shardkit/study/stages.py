"""The study as stages — SHARD, instruction data, tunings, evaluations — and the report rows they feed.

Each stage holds the very config object its command runs with (BuildConfig, DataConfig, TrainConfig, EvalConfig),
derived from the preset's typed sections with `dataclasses.replace`. A stage is named by the hash of that resolved
config, its clips and the ids of the stages it reads — so writing a default out in a preset does not rename a stage,
a rerun finds finished stages by name, and changing one ablation changes the ids of that branch only (its data, its
tuning, its evaluation), never the rest. Planning does no I/O; `runner.py` executes the plan.
"""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace

from shardkit.benchmark.config import BuildConfig
from shardkit.config import identity
from shardkit.errors import ShardkitError
from shardkit.eval.config import AttentionConfig, EvalConfig
from shardkit.eval.controls import AUDIO_CONTROLS, CASCADE, control_condition
from shardkit.study.preset import CONDITIONS, Clips, StudyConfig, Tuning
from shardkit.train.config import DataConfig, TrainConfig

KINDS = ("shard", "data", "train", "eval", "attention")


@dataclass(frozen=True)
class Stage:
    kind: str  # shard | data | train | eval | attention
    name: str  # what the report calls it; not part of the id, so equal stages are run once
    config: BuildConfig | DataConfig | TrainConfig | EvalConfig | AttentionConfig  # its command's; paths set at run
    inputs: Mapping[str, str | None] = field(default_factory=dict)  # role -> id of a stage it reads
    clips: Clips | None = None  # shard and data: where the clips come from
    device: str | None = None  # train: cpu or cuda[:N] (an eval's is in its config)

    def describe(self) -> dict:
        """Everything that determines the stage's output, as JSON: hashed into its id, written into done.json."""
        out = {"kind": self.kind, "config": identity(self.config), "inputs": dict(self.inputs)}
        return out | ({"clips": asdict(self.clips)} if self.clips else {}) | \
            ({"device": self.device} if self.device else {})

    @property
    def id(self) -> str:
        blob = json.dumps(self.describe(), sort_keys=True)
        return f"{self.kind}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class Row:
    """One line of the report: an evaluated condition of one model."""

    name: str
    group: str  # condition | ablation | control
    base: str | None  # the row this one varies (ablations and controls)
    description: str
    eval: str  # eval stage id
    condition: str  # the condition inside that run: prepended | interleaved | text | <placement>-<control>


@dataclass
class Plan:
    stages: dict[str, Stage] = field(default_factory=dict)  # id -> stage, in run order (inputs first)
    rows: list[Row] = field(default_factory=list)  # the first training seed's: every table of the report
    tunings: dict[str, str] = field(default_factory=dict)  # report name -> train stage id (loss curves)
    replicates: dict[int, list[Row]] = field(default_factory=dict)  # further training seed -> its condition rows
    attention: dict[str, str] = field(default_factory=dict)  # condition name -> attention stage id (first seed)

    def add(self, stage: Stage) -> str:
        self.stages.setdefault(stage.id, stage)
        return stage.id


def _replay_mix(mix: Mapping[str, float], share: float) -> dict:
    """The tuning mix with its replay share set to `share`, the other tasks scaled to keep their proportions."""
    mix = {k: float(v) for k, v in mix.items()}
    rest = sum(v for k, v in mix.items() if k != "replay")
    out = {k: v * (1 - share) / rest for k, v in mix.items() if k != "replay"}
    return {**out, "replay": share} if share else out


def _pretrain_data(data: DataConfig, how: str) -> DataConfig:
    """Stage 0's or the instruct stage's data with its audio placed `how`: interleaved puts every labeling prompt
    (replay, always prepended) and every audio question at its marker; mixed turns half of the labeling prompts
    into interleaved ones and leaves the questions' placement as it was."""
    mix = {k: float(v) for k, v in data.mix.items()}
    share = mix.pop("replay", 0.0)
    moved = share if how == "interleaved" else share / 2
    mix["identity"] = mix.get("identity", 0.0) + moved
    if share - moved:
        mix["replay"] = share - moved
    return replace(data, mix=mix, placement="interleaved" if how == "interleaved" else data.placement)


def plan_study(cfg: StudyConfig) -> Plan:
    """Every stage the preset asks for, deduplicated, in an order that runs each after its inputs: the first
    training seed's whole study (conditions, controls, ablations), then each further seed's tunings and conditions.
    Data, SHARD and evaluation keep `cfg.seed`; only training varies between seeds."""
    p = Plan()
    shard = p.add(Stage("shard", "SHARD", cfg.shard.build, clips=cfg.shard.clips))

    def data(name: str, section: Tuning, size: int, **change) -> str:
        # the section's own clips (never SHARD's manifest), with SHARD's clips left out by id and audio hash
        return p.add(Stage("data", name, replace(section.data, size=size, **change), {"shard": shard},
                           clips=section.clips))

    def train(name: str, section: Tuning, data_id: str, start: str | None, base: str | None, seed: int,
              fisher: str | None = None, **change) -> str:
        """A train stage; `fisher`: the data stage whose prompts EWC's Fisher is estimated on."""
        return p.add(Stage("train", name, replace(section.train, seed=seed, **change),
                           {"data": data_id, "start": start, **({"base": base} if base else {}),
                            **({"fisher": fisher} if fisher else {})}, device=cfg.device))

    def evaluate(name: str, tuned: str | None, base: str | None, placements: list[str], control: bool = False,
                 audio_controls: tuple[str, ...] = (), cascade: bool = False, start: str | None = None,
                 **change) -> str:
        """An eval stage of the train stage `tuned` (None: the preset's model as it is); `change` sets EvalConfig
        fields (a position, a cue, a model spec with options)."""
        e = replace(cfg.eval, placements=tuple(placements), control=control, audio_controls=tuple(audio_controls),
                    cascade=cascade, **change)
        return p.add(Stage("eval", name, e, {"shard": shard, "model": tuned, **({"base": base} if base else {}),
                                             **({"start": start} if start else {})}))

    tunings = {"ft-small": cfg.small, "ft-large": cfg.large}
    data_ids = {}
    if cfg.stage0:
        data_ids["stage 0"] = data("stage 0", cfg.stage0, cfg.stage0.data.size)
    if cfg.instruct:
        data_ids["instruct"] = data("instruct", cfg.instruct, cfg.instruct.data.size)
    data_ids |= {CONDITIONS[k]: data(CONDITIONS[k], cfg.tuning, n) for k, n in tunings.items()}
    placement = {"original": "prepended", "zero-shot": "interleaved", "ft-small": "interleaved",
                 "ft-large": "interleaved"}
    described = {"original": "audio prepended, LTU's way", "zero-shot": "same weights, audio at the <audio> marker",
                 "ft-small": f"interleaved LoRA tuning on {cfg.small:,} samples",
                 "ft-large": f"interleaved LoRA tuning on {cfg.large:,} samples"}
    ab, ev = cfg.ablations, cfg.eval
    heard = {"mismatched": "over a clip of another class", "silence": "over 10 s of silence",
             CASCADE: "with its own identity answer in words instead of the audio"}

    def replicate(seed: int, tag: str, pretrain: dict[str, str] | None = None
                  ) -> tuple[list[Row], dict, str | None, str | None]:
        """One training seed's tunings and the four conditions (with their audio and text controls): (rows,
        model per condition, stage-0 start, instruct base). `pretrain` replaces the data of stage 0 and the
        instruct stage (name → data stage id): another base, the same four conditions from it, no controls."""
        def tune(name: str, section: dict, start: str | None, base: str | None) -> str:
            data_id = (pretrain or {}).get(name, data_ids[name])
            p.tunings[name + tag] = train(name + tag, section, data_id, start, base, seed)
            return p.tunings[name + tag]

        start = base = None  # base: the instruct stage, merged into the model every later stage starts from
        if cfg.stage0:
            start = tune("stage 0", cfg.stage0, None, None)
        if cfg.instruct:  # LTU's instruction tuning, prepended: the base learns to answer before placement matters
            base, start = tune("instruct", cfg.instruct, start, None), None  # the merged base holds the projector
        model = {"original": start, "zero-shot": start}
        for key in tunings:
            model[key] = tune(CONDITIONS[key], cfg.tuning, start, base)
        rows, audio_rows = [], []
        for key, name in CONDITIONS.items():
            controls = AUDIO_CONTROLS if key in ab.audio_control and pretrain is None else ()
            e = evaluate(name + tag, model[key], base, [placement[key]], audio_controls=controls,
                         cascade=bool(controls))
            rows.append(Row(name, "condition", None, described[key], e, placement[key]))
            audio_rows += [Row(f"{name} · {c}", "control", name, f"{name}, the questions asked {heard[c]}", e,
                               control_condition(placement[key], c))
                           for c in (*controls, *((CASCADE,) if controls else ()))]  # same run, same model
        rows += audio_rows
        for key in ab.control if pretrain is None else ():
            name = f"control ({CONDITIONS[key]})"
            rows.append(Row(name, "control", CONDITIONS[key], f"{CONDITIONS[key]} model, the label in words "
                                                              f"instead of audio",
                            evaluate(name + tag, model[key], base, [], control=True), "text"))
        return rows, model, start, base

    def attend(key: str, model: str | None, base: str | None) -> str:
        a = AttentionConfig(model=cfg.model, placements=(placement[key],), limit=ev.limit, batch_size=ev.batch_size,
                            n_boot=ev.n_boot, seed=cfg.seed, position=ev.position, cue=ev.cue, device=cfg.device,
                            dtype=cfg.dtype)
        return p.add(Stage("attention", f"attention: {CONDITIONS[key]}", a,
                           {"shard": shard, "model": model, **({"base": base} if base else {})}))

    first, *more = cfg.seeds
    rows, model, start, base = replicate(first, "")
    p.rows += [r for r in rows if r.condition != "text"]
    texts = [r for r in rows if r.condition == "text"]  # the report lists the text controls after the ablations

    on, cond = ab.condition, CONDITIONS[ab.condition]
    for pos in ab.position:
        if pos != ev.position:
            e = evaluate(f"position={pos}", model[on], base, ["interleaved"], position=pos)
            p.rows.append(Row(f"position={pos}", "ablation", cond, f"{cond}, marker at the {pos} of the question",
                              e, "interleaved"))
    if ab.cue:
        cue = not ev.cue
        name = "cue" if cue else "no cue"
        e = evaluate(name, model[on], base, ["interleaved"], cue=cue)
        p.rows.append(Row(name, "ablation", cond, f"{cond}, question {'names' if cue else 'does not name'} the "
                                                  f"modality", e, "interleaved"))
    section = cfg.tuning
    large = CONDITIONS["ft-large"]
    for key, shares, prefix in ((on, ab.replay, ""), ("ft-large", ab.large_replay, f"{large} ")):
        for share in shares:  # the condition (or FT-Large, a forgetting mitigation) retuned with another replay share
            name, varies = f"{prefix}replay={share:g}", CONDITIONS[key]
            d = data(name, section, tunings[key], mix=_replay_mix(section.data.mix, share))
            t = p.tunings[name] = train(name, section, d, start, base, first)
            p.rows.append(Row(name, "ablation", varies, f"{varies} tuned with {share:.0%} replay of prepended "
                                                        "prompts", evaluate(name, t, base, ["interleaved"]),
                              "interleaved"))
    for r in ab.lora_rank:
        name = f"LoRA r={r}"
        t = p.tunings[name] = train(name, section, data_ids[cond], start, base, first, lora_r=r, lora_alpha=2 * r)
        p.rows.append(Row(name, "ablation", cond, f"{cond} with LoRA rank {r}, alpha {2 * r}",
                          evaluate(name, t, base, ["interleaved"]), "interleaved"))
    for alpha in ab.interpolate:  # FT-Large's weights moved back toward where its tuning started
        scaled = f"{cfg.model}{',' if ':' in cfg.model else ':'}scale={alpha:g}"
        p.rows.append(Row(f"FT-Large ×{alpha:g}", "ablation", large, f"{large}'s tuning scaled by α = {alpha:g} "
                          "toward its start (weight space, no retraining)",
                          evaluate(f"FT-Large ×{alpha:g}", model["ft-large"], base, ["interleaved"], start=start,
                                   model=scaled), "interleaved"))
    for lam in ab.intruders:  # FT-Large's LoRA, its directions foreign to the base weights shrunk (peft)
        name = f"FT-Large intruders×{lam:g}"
        spec = f"{cfg.model}{',' if ':' in cfg.model else ':'}intruders={lam:g}"
        p.rows.append(Row(name, "ablation", large, f"{large}'s LoRA with its intruder dimensions scaled by λ = "
                          f"{lam:g} (peft; no retraining)",
                          evaluate(name, model["ft-large"], base, ["interleaved"], model=spec), "interleaved"))
    if ab.ewc:  # the Fisher's prompts: prepended labeling of train clips, what FT-Large forgets
        kept = data("EWC labeling", section, section.train.ewc_samples, mix={"replay": 1.0})
    for lam in ab.ewc:
        name = f"FT-Large EWC λ={lam:g}"
        t = p.tunings[name] = train(name, section, data_ids[large], start, base, first, fisher=kept, ewc=lam)
        p.rows.append(Row(name, "ablation", large, f"{large} tuned with EWC (λ = {lam:g}) holding the weights its "
                          "labelling needs", evaluate(name, t, base, ["interleaved"]), "interleaved"))
    if ab.pretrain and not (cfg.stage0 or cfg.instruct):
        raise ShardkitError("ablations.pretrain varies how the base is pre-trained: the preset needs a stage0 or an "
                            "instruct section (a model pre-trained elsewhere, such as LTU, cannot be re-pre-trained)")
    for how in ab.pretrain:  # the base pre-trained with the audio interleaved (or mixed), and the conditions from it
        tag = f" · {how} base"
        sections = {"stage 0": cfg.stage0, "instruct": cfg.instruct}
        swapped = {}
        for name, sec in sections.items():
            if sec:
                moved = _pretrain_data(sec.data, how)
                swapped[name] = data(name + tag, sec, sec.data.size, mix=moved.mix, placement=moved.placement)
        variant = replicate(first, tag, swapped)[0]
        p.rows += [replace(r, name=r.name + tag, group="ablation", base=r.name,
                           description=f"{r.name}, from a base pre-trained with {how} audio") for r in variant]
    p.rows += texts
    p.attention = {CONDITIONS[key]: attend(key, model[key], base) for key in ab.attention}
    for seed in more:
        p.replicates[seed] = replicate(seed, f" · seed {seed}")[0]
    return p
