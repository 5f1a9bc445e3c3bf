"""Study presets: one YAML file names the model, SHARD, the tunings, scoring and the ablations.

A preset is data only. Its sections are the options of the commands a study composes (`build`, `make-data`,
`train`, `eval`), so each is validated by the very dataclass that command uses, and every problem in the file is
reported at once, before anything heavy runs. A user preset may start from a shipped one with `base: NAME` and
override a few keys; `--set section.key=value` does the same from the command line.
"""

from dataclasses import dataclass, field
from pathlib import Path

from shardkit.benchmark.config import BuildConfig
from shardkit.config import load_fields, read_mapping, unknown_keys
from shardkit.errors import ShardkitError
from shardkit.eval.config import EvalConfig
from shardkit.names import POSITIONS
from shardkit.suggest import did_you_mean
from shardkit.train.config import DataConfig, TrainConfig

PRESETS_DIR = Path(__file__).parent / "presets"
CONDITIONS = {"original": "original", "zero-shot": "zero-shot interleaved", "ft-small": "FT-Small",
              "ft-large": "FT-Large"}  # key -> the name the report uses
PAPER_SIZES = {"small": 40_000, "large": 1_000_000}  # the seed paper's FT-Small and FT-Large
SET_BY_STUDY = {"train": ("model", "data", "seed"),
                "eval": ("model", "shard", "placements", "control", "audio_controls", "cascade", "device", "dtype")}


PRETRAIN = ("interleaved", "mixed")  # how a base may be pre-trained instead of prepended (LTU's way)


@dataclass(frozen=True)
class Ablations:
    condition: str = "ft-small"  # the condition whose model and prompt the ablations vary (the paper's recommended one)
    position: tuple[str, ...] = ()  # marker positions besides the eval's own (start, middle, end)
    cue: bool = False  # also ask without naming the modality ("the sound" instead of "the sound in this audio clip")
    replay: tuple[float, ...] = ()  # replay shares to tune with instead of the tuning mix's (0.0: no replay)
    lora_rank: tuple[int, ...] = ()  # LoRA ranks besides the tuning's, alpha = 2 × rank as LTU's 8/16
    control: tuple[str, ...] = ()  # conditions whose model is also asked with the label in words, no audio
    audio_control: tuple[str, ...] = ()  # conditions also asked over mismatched audio, over silence and with the
    #                                       model's own label for the clip in words (the cascade)
    attention: tuple[str, ...] = ()  # conditions whose attention is measured (`shardkit attention`): the share the
    #                                  answer and the candidate give the audio, per layer
    interpolate: tuple[float, ...] = ()  # FT-Large moved back toward its start in weight space by these α (0: the
    #                                      start, 1: FT-Large), evaluated without retraining: a forgetting mitigation
    large_replay: tuple[float, ...] = ()  # FT-Large retuned with these replay shares: the replay sweep against its
    #                                       forgetting (the tuning mix's own share is FT-Large itself)
    pretrain: tuple[str, ...] = ()  # bases pre-trained with the audio interleaved or mixed instead of prepended (stage
    #                                 0 and the instruct stage), each followed by the four conditions
    ewc: tuple[float, ...] = ()  # FT-Large retuned with EWC at these λ: a Fisher of its start on prepended labeling
    #                              prompts (train clips) holds what labelling needs (train/ewc.py)
    intruders: tuple[float, ...] = ()  # FT-Large's LoRA with its intruder dimensions scaled by these λ (peft's
    #                                    knowledge-preserving post-processing), evaluated without retraining

    def __post_init__(self):
        """What fits the study: known conditions and positions, ranks and shares in range, and a condition that
        each ablation can vary."""
        problems = []
        if self.condition not in CONDITIONS:
            problems.append(f"condition={self.condition!r}: must be one of {', '.join(CONDITIONS)}")
        problems += [f"{key}: {c!r} is not one of {', '.join(CONDITIONS)}"
                     for key in ("control", "audio_control", "attention") for c in getattr(self, key)
                     if c not in CONDITIONS]
        problems += [f"position: {p!r} is not {', '.join(POSITIONS)}" for p in self.position if p not in POSITIONS]
        problems += [f"lora_rank: {r!r} is not a positive integer" for r in self.lora_rank if r < 1]
        problems += [f"{key}: {x!r} is not a share in [0, 1)" for key in ("replay", "large_replay")
                     for x in getattr(self, key) if not 0 <= x < 1]
        problems += [f"interpolate: {x!r} is not an α in (0, 1)" for x in self.interpolate if not 0 < x < 1]
        problems += [f"intruders: {x!r} is not a λ in [0, 1)" for x in self.intruders if not 0 <= x < 1]
        problems += [f"ewc: {x!r} is not a λ > 0" for x in self.ewc if not x > 0]
        problems += [f"pretrain: {x!r} is not one of {', '.join(PRETRAIN)}" for x in self.pretrain if x not in PRETRAIN]
        if self.condition == "original" and (self.position or self.cue):
            problems.append("condition=original prepends the audio: position and cue ablations need an "
                            "interleaved condition")
        if self.condition in ("original", "zero-shot") and (self.replay or self.lora_rank):
            problems.append(f"condition={self.condition}: replay and lora_rank retrain a tuning, so the condition "
                            "must be ft-small or ft-large")
        if problems:
            raise ShardkitError("; ".join(problems))


@dataclass(frozen=True)
class Clips:
    """Where a stage's clips come from (`--manifest`, `--audio-root`); none: the bundled sample set."""

    manifest: str | None = None
    audio_root: str | None = None


@dataclass(frozen=True)
class Shard:
    """The `shard:` section: `shardkit build`'s options and clips."""

    build: BuildConfig = BuildConfig()
    clips: Clips = Clips()


@dataclass(frozen=True)
class Tuning:
    """A `stage0:`, `instruct:` or `tuning:` section: `make-data`'s and `train`'s options and the data's clips.
    Their `size` (data), `model`, `data` and `seed` (train) are the study's to set; `tuning:` gives its two sizes."""

    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = TrainConfig()
    clips: Clips = Clips()
    small: int = 0  # tuning: FT-Small's samples
    large: int = 0  # tuning: FT-Large's samples


@dataclass(frozen=True)
class StudyConfig:
    name: str
    model: str  # registry spec of the base model (`shardkit models`)
    description: str = ""
    device: str = "cpu"
    dtype: str = "float32"  # bfloat16 on a GPU
    seed: int = 0  # instruction data, tuning and bootstrap; SHARD has its own in shard.seed
    train_seeds: tuple[int, ...] = ()  # every tuning (stage 0 included) once per seed, the first as `seed`'s run;
    # the report gives the between-seed spread and counts a verdict only where every seed agrees. () = (seed,)
    note: str = ""  # why this preset's scale differs from the paper's, for the report
    shard: Shard = Shard()
    eval: EvalConfig = EvalConfig()  # options shared by every condition; model, placements and controls per stage
    stage0: Tuning | None = None  # align the projector first; None when the model already hears
    instruct: Tuning | None = None  # prepended audio questions and text relations, merged into the base
    tuning: Tuning = Tuning()  # FT-Small and FT-Large
    ablations: Ablations = Ablations()
    bases: tuple[str, ...] = ()  # the presets this one is built on (`base:`), nearest first: their folders take it

    @property
    def seeds(self) -> tuple[int, ...]:
        """Training seeds, the first being the run the report's tables show."""
        return self.train_seeds or (self.seed,)

    @property
    def small(self) -> int:
        return self.tuning.small

    @property
    def large(self) -> int:
        return self.tuning.large


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _read(name_or_path: str, seen: tuple[str, ...] = ()) -> tuple[dict, tuple[str, ...]]:
    """The YAML mapping of a preset name or file, with its `base:` chain merged underneath, and the names of the
    presets in that chain, nearest first."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = PRESETS_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ShardkitError(f"no preset {name_or_path!r}{did_you_mean(name_or_path, preset_names())}"
                                f" (shipped: {', '.join(preset_names())}; or give a .yaml path)")
    values = read_mapping(path, "preset")
    base = values.pop("base", None)
    if base is None:
        return values, ()
    if str(base) in seen:
        raise ShardkitError(f"{path}: base chain loops through {base!r}")
    under, bases = _read(str(base), (*seen, str(base)))
    return merge(under, values), (str(under.get("name") or base), *bases)


def merge(under: dict, over: dict) -> dict:
    """`over` on top of `under`, recursively for mappings (a list or scalar replaces)."""
    out = dict(under)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_sets(pairs: list[str]) -> dict:
    """`--set a.b=value` pairs as a nested mapping; values are YAML (numbers, lists, null)."""
    import yaml

    out: dict = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise ShardkitError(f"--set {pair!r}: expected section.key=value, e.g. tuning.large=2560")
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value) if value else ""
    return out


def load_preset(name_or_path: str, overrides: dict | None = None) -> StudyConfig:
    """A validated StudyConfig: shipped preset or file, `base:` chain, then overrides; every problem at once."""
    values, bases = _read(name_or_path)
    values = merge(values, overrides or {})
    sections, problems = _sections(values)
    if "bases" in values:
        problems.append("bases: set by the `base:` chain, not by hand")
    if problems:
        raise ShardkitError(f"preset {name_or_path}: " + "; ".join(problems))
    return StudyConfig(**{**values, **sections, "train_seeds": tuple(values.get("train_seeds") or ()),
                          "bases": bases})


def _unknown(where: str, keys, known) -> list[str]:
    """Keys of a section that is not a config class (the top level, a stage's {data, train, ...})."""
    return [f"{where}: {p}" if where else p for p in unknown_keys(keys, known)]


def _load(problems: list[str], where: str, cls, values: dict, study: dict | None = None,
          set_by_study: tuple[str, ...] = ()):
    """A section as the config class its command uses (`config.load_fields`), the study's values (seed, device, ...)
    underneath; keys only the study may set are named. None (and the problem noted) when it does not load."""
    problems.extend(f"{where}.{k}: set by the study, not the preset" for k in set_by_study if k in values)
    try:
        return load_fields(cls, {**(study or {}), **{k: v for k, v in values.items() if k not in set_by_study}},
                           where)
    except ShardkitError as e:
        problems.append(str(e))
        return None


def _clips(values: dict) -> tuple[Clips, dict]:
    """A section's clip source, and the rest of its keys."""
    clips = Clips(*(None if values.get(k) in (None, "") else str(values[k]) for k in ("manifest", "audio_root")))
    return clips, {k: v for k, v in values.items() if k not in ("manifest", "audio_root")}


def _sections(values: dict) -> tuple[dict, list[str]]:
    """The typed sections of a preset mapping (shard, eval, stage0, instruct, tuning, ablations), and every problem,
    each naming the key, the value and what is allowed."""
    from shardkit.models.registry import parse_spec

    known = [f for f in StudyConfig.__dataclass_fields__]
    problems = _unknown("", values, known)
    if not values.get("name"):
        problems.append("name: a preset needs a name")
    if not values.get("model"):
        problems.append("model: give the base model spec, e.g. --set model=ltu:ckpt=PATH,llm=DIR")
    else:
        try:
            parse_spec(str(values["model"]))
        except ShardkitError as e:
            problems.append(f"model: {e}")
    seeds = values.get("train_seeds") or []
    if not isinstance(seeds, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in seeds) \
            or len(set(seeds)) != len(seeds):
        problems.append(f"train_seeds={seeds!r}: a list of distinct integers, e.g. [0, 1, 2]")
    if values.get("device", "cpu") != "cpu" and not str(values.get("device")).startswith("cuda"):
        problems.append(f"device={values['device']!r}: must be cpu or cuda[:N]")
    seed, model = values.get("seed", 0), str(values.get("model") or "")
    out = {}

    clips, build = _clips(values.get("shard") or {})
    out["shard"] = Shard(_load(problems, "shard", BuildConfig, build), clips)
    out["eval"] = _load(problems, "eval", EvalConfig, dict(values.get("eval") or {}),
                        {"seed": seed, "model": model, "device": values.get("device", "cpu"),
                         "dtype": values.get("dtype", "float32")}, SET_BY_STUDY["eval"])

    def stage(section: str, sub: dict, sizes: tuple[str, ...]) -> Tuning:
        problems.extend(_unknown(section, sub, ["data", "train", *sizes]))
        clips, data = _clips(sub.get("data") or {})
        if "size" in data and sizes:
            problems.append(f"{section}.data.size: set {section}.small and {section}.large instead")
            data.pop("size")
        size = {k: sub.get(k) for k in sizes}
        return Tuning(_load(problems, f"{section}.data", DataConfig, data, {"seed": seed}),
                      _load(problems, f"{section}.train", TrainConfig, dict(sub.get("train") or {}),
                            {"seed": seed, "model": model}, SET_BY_STUDY["train"]), clips, **size)

    own = "manifest" in (values.get("shard") or {})
    for section in ("stage0", "instruct", "tuning"):
        sub = values.get(section)
        if own and isinstance(sub, dict) and "manifest" not in (sub.get("data") or {}):
            problems.append(f"{section}.data.manifest: SHARD is built from shard.manifest, so tuning data needs a "
                            "manifest of its own clips (e.g. AudioSet's balanced_train_segments.csv); it is never "
                            "taken from SHARD's")
    for section in ("stage0", "instruct"):
        if values.get(section) is not None:
            if not isinstance(values[section], dict):
                problems.append(f"{section}: a mapping with data and train, or null")
            else:
                out[section] = stage(section, values[section], ())
    if values.get("instruct") and values.get("model"):
        try:
            family = parse_spec(str(values["model"]))[0]
            if family.base_key is None:
                problems.append(f"instruct: {family.name} cannot take a merged base here (tiny-ltu can)")
        except ShardkitError:
            pass  # reported under model
    tuning = values.get("tuning") or {}
    out["tuning"] = stage("tuning", tuning, ("small", "large"))
    small, large = tuning.get("small"), tuning.get("large")
    if not (isinstance(small, int) and isinstance(large, int) and 0 < small <= large):
        problems.append(f"tuning.small={small!r}, tuning.large={large!r}: sample counts with 0 < small <= large")
    out["ablations"] = _load(problems, "ablations", Ablations, values.get("ablations") or {})
    return out, problems
