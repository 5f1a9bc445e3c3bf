"""What `shardkit build` is asked to do: `BuildConfig`, checked on creation; torch- and scipy-free, so that the CLI's
defaults and a study's sections read it without loading the builder."""

from dataclasses import dataclass

from shardkit.errors import ShardkitError

SPLITS = ("auto", "test", "train", "all")  # auto = test when the manifest has splits, else all


@dataclass(frozen=True)
class BuildConfig:
    seed: int = 0
    max_depth: int = 6  # hypernym positives up to this many steps above the word: deeper ones get vague
    per_task: int = 4  # positives per clip, word and task (as many negatives): keeps common words from dominating
    split: str = "auto"  # clips of this split; "auto" = "test" when the manifest has splits, else all

    def __post_init__(self):
        problems = [f"{name} must be >= 1, got {getattr(self, name)}" for name in ("max_depth", "per_task")
                    if getattr(self, name) < 1]
        if self.split not in SPLITS:
            problems.append(f"split must be auto, train, test or all, got {self.split!r}")
        if problems:
            raise ShardkitError("; ".join(problems))
