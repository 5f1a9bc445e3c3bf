"""The shared names: their values and the order every table reports them in."""

from shardkit.names import PLACEMENTS, TASKS, YES_NO, Placement


def test_placements_are_the_enum_values_in_order():
    assert PLACEMENTS == tuple(p.value for p in Placement) == ("prepended", "interleaved")
    assert [Placement(p) for p in PLACEMENTS] == list(Placement)
    assert Placement.PREPENDED == "prepended" and f"{Placement.INTERLEAVED}" == "interleaved"  # a str where one is read


def test_tasks_are_yes_no_then_identity():
    assert TASKS == ("synonym", "hypernym", "identity")
    assert YES_NO == TASKS[: len(YES_NO)] == ("synonym", "hypernym")
