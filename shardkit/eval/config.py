"""What `shardkit eval` is asked to do: `EvalConfig`, checked on creation, and which of its keys may change on resume;
what `shardkit attention` is asked to do: `AttentionConfig`.

Kept apart from the runner (and from torch) so that the CLI's defaults, a study's sections and `--help` read it
without loading a model library.
"""

from dataclasses import dataclass

from shardkit.errors import ShardkitError
from shardkit.eval.controls import AUDIO_CONTROLS, CASCADE, CONTROL, control_condition
from shardkit.names import DTYPES, PLACEMENTS, POSITIONS, TASKS, YES_NO

SCORINGS = ("generate", "yesno", "cloze")

# How a run is carried out, not what it measures: they may change on resume. batch_size changes which items share
# a forward (scores agree to float tolerance); n_boot and seed act on results.json only (a mismatched clip is part
# of its record's key).
RUN_CONTROL = ("batch_size", "n_boot", "seed")


@dataclass(frozen=True)
class EvalConfig:
    model: str = "tiny-ltu"  # a registry spec (`shardkit models`)
    shard: str = ""  # folder written by `shardkit build`
    placements: tuple[str, ...] = PLACEMENTS
    tasks: tuple[str, ...] = TASKS
    scoring: str = "yesno"  # generate | yesno | cloze (identity always generates, except under cloze)
    control: bool = True  # also ask with the gold label in words instead of audio
    audio_controls: tuple[str, ...] = AUDIO_CONTROLS  # also ask each placement over another clip's audio, silence
    cascade: bool = True  # also ask each placement's yes/no questions with the model's own label in words
    limit: int | None = None  # first N items per task (file order), for quick runs
    batch_size: int = 32  # questions per forward; yes/no questions about one clip share a batch and their prefix
    seed: int = 0  # bootstrap resampling
    position: str = "middle"  # where the marker stands in each question
    cue: bool = True  # questions name the modality ("the sound in this audio clip")
    max_new_tokens: int = 24  # enough for a yes/no with a reason or a short label
    n_boot: int = 1000  # bootstrap replicates for CIs and paired differences
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self):
        problems = []
        if set(self.placements) - set(PLACEMENTS):
            problems.append(f"placements must be among {', '.join(PLACEMENTS)}, got {','.join(self.placements)}")
        if not self.placements and not self.control:
            problems.append("nothing to evaluate: give one or more placements, or the text control")
        if set(self.audio_controls) - set(AUDIO_CONTROLS):
            problems.append(f"audio_controls must be among {', '.join(AUDIO_CONTROLS)}, got "
                            f"{','.join(self.audio_controls)}")
        if self.audio_controls and not self.placements:
            problems.append("audio_controls replace the audio of a placement: give one or more placements")
        if not self.tasks or set(self.tasks) - set(TASKS):
            problems.append(f"tasks must be among {', '.join(TASKS)}, got {','.join(self.tasks)}")
        if self.position not in POSITIONS:
            problems.append(f"position must be one of {', '.join(POSITIONS)}, got {self.position!r}")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.scoring not in SCORINGS:
            problems.append(f"scoring must be one of {', '.join(SCORINGS)}, got {self.scoring!r}")
        if self.limit is not None and self.limit < 1:
            problems.append(f"limit must be >= 1, got {self.limit}")
        if self.batch_size < 1 or self.n_boot < 1 or self.max_new_tokens < 1:
            problems.append("batch_size, n_boot and max_new_tokens must be >= 1")
        if problems:
            raise ShardkitError("; ".join(problems))

    @property
    def cascades(self) -> tuple[str, ...]:
        """The cascade of each placement ("prepended-cascade"), where identity and a yes/no task are both asked."""
        asked = self.cascade and "identity" in self.tasks and set(self.tasks) - {"identity"}
        return tuple(control_condition(p, CASCADE) for p in self.placements) if asked else ()

    @property
    def conditions(self) -> tuple[str, ...]:
        """Placements, then each placement under each audio control ("prepended-mismatched"), then each placement's
        cascade, then the text control."""
        audio = tuple(control_condition(p, c) for p in self.placements for c in self.audio_controls)
        return self.placements + audio + self.cascades + ((CONTROL,) if self.control else ())


@dataclass(frozen=True)
class AttentionConfig:
    """`shardkit attention`: which model, SHARD items and placements to measure, and where attention is read."""

    model: str = "tiny-ltu"
    shard: str = ""
    placements: tuple[str, ...] = PLACEMENTS
    tasks: tuple[str, ...] = YES_NO
    limit: int | None = None  # items per task (the first ones, as `shardkit eval --limit`)
    layers: tuple[int, ...] | None = None  # None: every layer
    per_head: bool = False  # also keep each head's shares (layers × heads × roles per placement and query)
    batch_size: int = 16
    n_boot: int = 1000
    seed: int = 0
    position: str = "middle"
    cue: bool = True
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self):
        problems = [f"placement {p!r} is not one of {', '.join(PLACEMENTS)}" for p in self.placements
                    if p not in PLACEMENTS]
        problems += [f"task {t!r} is not a yes/no task ({', '.join(YES_NO)})" for t in self.tasks if t not in YES_NO]
        if self.position not in POSITIONS:
            problems.append(f"position must be one of {', '.join(POSITIONS)}, got {self.position!r}")
        if self.limit is not None and self.limit < 1:
            problems.append(f"limit must be >= 1, got {self.limit}")
        if self.batch_size < 1 or self.n_boot < 1:
            problems.append("batch_size and n_boot must be >= 1")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.layers is not None and any(k < 0 for k in self.layers):
            problems.append(f"layers are counted from 0, got {list(self.layers)}")
        if problems:
            raise ShardkitError("; ".join(problems))
