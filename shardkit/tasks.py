"""SHARD's tasks, named once: the two relation questions answered yes or no, and naming the sound."""

YES_NO = ("synonym", "hypernym")  # is Y another word for it? is it a kind of X?
TASKS = (*YES_NO, "identity")  # the order every table and test family reports them in
