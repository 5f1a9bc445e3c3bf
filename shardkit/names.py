"""The names every stage shares, written once: SHARD's tasks, where the audio is placed, where the marker stands in a
question, and the weight dtypes a run may ask for."""

from enum import StrEnum

YES_NO = ("synonym", "hypernym")  # is Y another word for it? is it a kind of X?
TASKS = (*YES_NO, "identity")  # the order every table and test family reports them in


class Placement(StrEnum):
    """The study's one controlled variable: where the audio tokens sit in the prompt."""

    PREPENDED = "prepended"  # all audio before BOS and the prompt (LTU)
    INTERLEAVED = "interleaved"  # audio where each <audio> marker stands


PLACEMENTS = tuple(p.value for p in Placement)  # ("prepended", "interleaved"): the order of every table
POSITIONS = ("start", "middle", "end")  # where the <audio> marker stands in a question
DTYPES = ("float32", "bfloat16", "float16")  # the weights' dtype; bfloat16 on a GPU
