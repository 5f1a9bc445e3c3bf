"""Study presets: one YAML file names the model, SHARD, the tunings, scoring and the ablations.

A preset is data only. Its sections are the options of the commands a study composes (`build`, `make-data`,
`train`, `eval`), so each is validated by the very dataclass that command uses, and every problem in the file is
reported at once, before anything heavy runs. A user preset may start from a shipped one with `base: NAME` and
override a few keys; `--set section.key=value` does the same from the command line.
"""

from dataclasses import dataclass, field
from pathlib import Path

from shardkit.config import load_fields, read_mapping, unknown_keys
from shardkit.errors import ShardkitError
from shardkit.suggest import did_you_mean

PRESETS_DIR = Path(__file__).parent / "presets"
CONDITIONS = {"original": "original", "zero-shot": "zero-shot interleaved", "ft-small": "FT-Small",
              "ft-large": "FT-Large"}  # key -> the name the report uses
PAPER_SIZES = {"small": 40_000, "large": 1_000_000}  # the seed paper's FT-Small and FT-Large
SET_BY_STUDY = {"train": ("model", "data"),
                "eval": ("model", "shard", "placements", "control", "audio_controls", "cascade", "device", "dtype"),
                "data": ("size",)}


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
    shard: dict = field(default_factory=dict)  # `shardkit build` options (+ manifest, audio_root)
    eval: dict = field(default_factory=dict)  # `shardkit eval` options shared by every condition
    stage0: dict | None = None  # {data, train}: align the projector first; None when the model already hears
    instruct: dict | None = None  # {data, train}: prepended audio questions and text relations, merged into the base
    tuning: dict = field(default_factory=dict)  # {small, large, data, train}: FT-Small and FT-Large
    ablations: Ablations = Ablations()

    @property
    def seeds(self) -> tuple[int, ...]:
        """Training seeds, the first being the run the report's tables show."""
        return self.train_seeds or (self.seed,)

    @property
    def small(self) -> int:
        return self.tuning["small"]

    @property
    def large(self) -> int:
        return self.tuning["large"]


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _read(name_or_path: str, seen: tuple[str, ...] = ()) -> dict:
    """The YAML mapping of a preset name or file, with its `base:` chain merged underneath."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = PRESETS_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ShardkitError(f"no preset {name_or_path!r}{did_you_mean(name_or_path, preset_names())}"
                                f" (shipped: {', '.join(preset_names())}; or give a .yaml path)")
    values = read_mapping(path, "preset")
    base = values.pop("base", None)
    if base is None:
        return values
    if str(base) in seen:
        raise ShardkitError(f"{path}: base chain loops through {base!r}")
    return merge(_read(str(base), (*seen, str(base))), values)


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
    values = merge(_read(name_or_path), overrides or {})
    problems = validate(values)
    if problems:
        raise ShardkitError(f"preset {name_or_path}: " + "; ".join(problems))
    ablations = load_fields(Ablations, values.get("ablations") or {}, "ablations")
    return StudyConfig(**{**values, "ablations": ablations, "train_seeds": tuple(values.get("train_seeds") or ())})


def _unknown(where: str, keys, known) -> list[str]:
    """Keys of a section that is not a config class (the top level, a stage's {data, train, ...})."""
    return [f"{where}: {p}" if where else p for p in unknown_keys(keys, known)]


def _section(problems: list[str], where: str, cls, values: dict, set_by_study: tuple[str, ...] = ()) -> None:
    """A section checked by the config class its command uses (`config.load_fields`); keys the study sets are named."""
    problems.extend(f"{where}.{k}: set by the study, not the preset" for k in set_by_study if k in values)
    try:
        load_fields(cls, {k: v for k, v in values.items() if k not in set_by_study}, where)
    except ShardkitError as e:
        problems.append(str(e))


def validate(values: dict) -> list[str]:
    """Every problem of a preset mapping, each naming the key, the value and what is allowed."""
    from shardkit.benchmark.build import BuildConfig
    from shardkit.eval.runner import EvalConfig
    from shardkit.models.registry import parse_spec
    from shardkit.train.config import DataConfig, TrainConfig

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

    shard = {k: v for k, v in (values.get("shard") or {}).items() if k not in ("manifest", "audio_root")}
    _section(problems, "shard", BuildConfig, shard)
    _section(problems, "eval", EvalConfig, dict(values.get("eval") or {}), SET_BY_STUDY["eval"])

    def stage(section: str, sub: dict, extra: tuple[str, ...]) -> None:
        problems.extend(_unknown(section, sub, ["data", "train", *extra]))
        data = {k: v for k, v in (sub.get("data") or {}).items() if k not in ("manifest", "audio_root")}
        if "size" in data and section == "tuning":
            problems.append("tuning.data.size: set tuning.small and tuning.large instead")
            data.pop("size")
        _section(problems, f"{section}.data", DataConfig, data)
        _section(problems, f"{section}.train", TrainConfig, dict(sub.get("train") or {}), SET_BY_STUDY["train"])

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
                stage(section, values[section], ())
    if values.get("instruct") and values.get("model"):
        try:
            family = parse_spec(str(values["model"]))[0]
            if family.base_key is None:
                problems.append(f"instruct: {family.name} cannot take a merged base here (tiny-ltu can)")
        except ShardkitError:
            pass  # reported under model
    tuning = values.get("tuning") or {}
    stage("tuning", tuning, ("small", "large"))
    small, large = tuning.get("small"), tuning.get("large")
    if not (isinstance(small, int) and isinstance(large, int) and 0 < small <= large):
        problems.append(f"tuning.small={small!r}, tuning.large={large!r}: sample counts with 0 < small <= large")

    ab = values.get("ablations") or {}
    problems += _unknown("ablations", ab, Ablations.__dataclass_fields__)
    if ab.get("condition", "ft-small") not in CONDITIONS:
        problems.append(f"ablations.condition={ab['condition']!r}: must be one of {', '.join(CONDITIONS)}")
    for key in ("control", "audio_control"):
        for c in ab.get(key) or ():
            if c not in CONDITIONS:
                problems.append(f"ablations.{key}: {c!r} is not one of {', '.join(CONDITIONS)}")
    for p in ab.get("position") or ():
        if p not in ("start", "middle", "end"):
            problems.append(f"ablations.position: {p!r} is not start, middle or end")
    for r in ab.get("lora_rank") or ():
        if not isinstance(r, int) or r < 1:
            problems.append(f"ablations.lora_rank: {r!r} is not a positive integer")
    for s in ab.get("replay") or ():
        if not isinstance(s, int | float) or not 0 <= s < 1:
            problems.append(f"ablations.replay: {s!r} is not a share in [0, 1)")
    cond = ab.get("condition", "ft-small")
    if cond == "original" and (ab.get("position") or ab.get("cue")):
        problems.append("ablations.condition=original prepends the audio: position and cue ablations need an "
                        "interleaved condition")
    if cond in ("original", "zero-shot") and (ab.get("replay") or ab.get("lora_rank")):
        problems.append(f"ablations.condition={cond}: replay and lora_rank retrain a tuning, so the condition must "
                        "be ft-small or ft-large")
    for k in ("position", "replay", "lora_rank", "control", "audio_control"):
        if k in ab and not isinstance(ab[k], list):
            problems.append(f"ablations.{k}: must be a list, got {ab[k]!r}")
    return problems
