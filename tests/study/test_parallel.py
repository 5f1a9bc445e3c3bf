"""study/parallel: ready stages run side by side, a stage only after every stage it reads, one thread each on two
workers; a failing stage stops the run with its own error. (The whole micro study under --jobs 2 equals the serial
one: tests/study/test_runner.py.)"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shardkit.errors import ShardkitError
from shardkit.study.parallel import _threads, run_parallel
from shardkit.study.stages import Plan, Stage
from shardkit.train.config import DataConfig


def fake_stage(stage: Stage, out: Path, progress, rank: int, world: int, barrier) -> None:
    """Stands in for runner._run_stage: records when it ran and with how many threads."""
    import torch

    start = time.time()
    progress(stage, 1, 2, "")
    if stage.name == "broken":
        raise ShardkitError("this stage fails")
    if stage.name in ("b", "c"):  # each waits until the other has started: run one after the other, they never end
        (out / f"{stage.name}.started").touch()
        other = out / f"{'c' if stage.name == 'b' else 'b'}.started"
        deadline = time.time() + 120
        while not other.exists():
            if time.time() > deadline:
                raise ShardkitError(f"{stage.name} ran alone")
            time.sleep(0.05)
    time.sleep(3.0 if stage.name == "slow" else 0.2)
    (out / f"{stage.name}.json").write_text(json.dumps({"start": start, "end": time.time(),
                                                        "threads": torch.get_num_threads()}))


def _plan() -> tuple[Plan, dict[str, Stage]]:
    """a → (b, c) → d: b and c are independent."""
    plan, made = Plan(), {}
    for name, reads in (("a", ()), ("b", ("a",)), ("c", ("a",)), ("d", ("b", "c"))):
        made[name] = Stage(kind="data", name=name, config=DataConfig(size=1 + len(made)),
                           inputs={r: made[r].id for r in reads})
        plan.add(made[name])
    return plan, made


def test_ready_stages_run_side_by_side_and_wait_for_what_they_read(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    plan, made = _plan()
    done, seen = set(), []
    run_parallel(plan, tmp_path, list(plan.stages.values()), 2, fake_stage, done.__contains__,
                 lambda st, *a: seen.append(st.name), lambda m: None, lambda st, s: done.add(st.id))
    t = {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in "abcd"}
    assert done == set(plan.stages) and set(seen) == set("abcd")
    assert t["a"]["end"] <= min(t["b"]["start"], t["c"]["start"])  # after what they read
    assert max(t["b"]["start"], t["c"]["start"]) < min(t["b"]["end"], t["c"]["end"])  # b and c overlapped
    assert t["d"]["start"] >= max(t["b"]["end"], t["c"]["end"])
    assert {v["threads"] for v in t.values()} == {1}  # two cores, two workers: one thread each


def test_a_long_stage_with_no_other_beside_it_gets_every_core(tmp_path, monkeypatch):
    """cpu-demo's stage 0 runs while only data stages are left: on one thread it would hold the study back."""
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    kinds = {k: Stage(kind=k, name=k, config=DataConfig(size=n)) for n, k in enumerate(("data", "train", "eval"), 1)}
    data, train, ev = kinds["data"], kinds["train"], kinds["eval"]
    assert _threads(train, [data, data], jobs=2) == 4  # data stages take seconds: not counted
    assert _threads(train, [ev], jobs=2) == 2
    assert _threads(train, [ev, ev, ev], jobs=2) == 2  # never fewer than cores/jobs
    assert _threads(train, [ev, ev, ev], jobs=4) == 1
    assert _threads(data, [], jobs=2) == 1
    plan, done, started = Plan(), set(), []
    for st in (data, Stage(kind="train", name="t", config=DataConfig(size=9), inputs={"d": data.id})):
        plan.add(st)
    run_parallel(plan, tmp_path, list(plan.stages.values()), 2, fake_stage, done.__contains__, lambda *x: None,
                 started.append, lambda st, s: done.add(st.id))
    assert json.loads((tmp_path / "t.json").read_text())["threads"] == 4 and started[-1].endswith("(4 threads)")


def test_a_tuning_about_to_be_ready_counts_as_beside(tmp_path, monkeypatch):
    """cpu-mechanism: one base's stage 0 is ready while the other base's instruct stage waits only on its data stage,
    which takes seconds: the stage 0 must not take every core and then share them three threads to two cores."""
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    plan, done = Plan(), set()
    a, slow = Stage(kind="data", name="a", config=DataConfig(size=1)), Stage(kind="data", name="slow",
                                                                           config=DataConfig(size=2))
    t1 = Stage(kind="train", name="t1", config=DataConfig(size=3), inputs={"a": a.id})
    t2 = Stage(kind="train", name="t2", config=DataConfig(size=4), inputs={"slow": slow.id})
    for st in (a, slow, t1, t2):
        plan.add(st)
    run_parallel(plan, tmp_path, list(plan.stages.values()), 2, fake_stage, done.__contains__, lambda *x: None,
                 lambda m: None, lambda st, s: done.add(st.id))
    # t1 started while `slow` ran, so t2 was about to be ready beside it (t2's own count depends on whether t1's
    # process still runs when t2 starts: not asserted)
    assert json.loads((tmp_path / "t1.json").read_text())["threads"] == 2


def test_ready_tunings_start_before_ready_evaluations(tmp_path):
    plan = Plan()
    a = Stage(kind="data", name="a", config=DataConfig(size=1))
    e = Stage(kind="eval", name="e", config=DataConfig(size=2), inputs={"a": a.id})  # the kind is all that counts
    t = Stage(kind="train", name="t", config=DataConfig(size=3), inputs={"a": a.id})
    for st in (a, e, t):
        plan.add(st)
    done, started = set(), []
    run_parallel(plan, tmp_path, list(plan.stages.values()), 1, fake_stage, done.__contains__, lambda *x: None,
                 started.append, lambda st, s: done.add(st.id))
    assert [m.split()[1] for m in started] == ["data", "train", "eval"]


def test_a_failing_stage_raises_its_error_and_what_reads_it_never_runs(tmp_path):
    plan = Plan()
    a = Stage(kind="data", name="a", config=DataConfig(size=1))
    broken = Stage(kind="data", name="broken", config=DataConfig(size=2), inputs={"a": a.id})
    after = Stage(kind="data", name="d", config=DataConfig(size=3), inputs={"broken": broken.id})
    for st in (a, broken, after):
        plan.add(st)
    done = set()
    with pytest.raises(ShardkitError, match="this stage fails"):
        run_parallel(plan, tmp_path, list(plan.stages.values()), 2, fake_stage, done.__contains__,
                     lambda *a: None, lambda m: None, lambda st, s: done.add(st.id))
    assert done == {a.id} and not (tmp_path / "d.json").exists()


def slow_stage(stage: Stage, out: Path, progress, rank: int, world: int, barrier) -> None:
    """A stage that would run for ten minutes; it says which process runs it."""
    (out / f"{stage.name}.pid").write_text(str(os.getpid()))
    time.sleep(600)


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except (FileNotFoundError, IndexError):
        return False


DRIVER = """
import sys; sys.path.insert(0, {here!r})
from pathlib import Path
from test_parallel import slow_stage
from shardkit.study.parallel import _threads, run_parallel
from shardkit.study.stages import Plan, Stage
from shardkit.train.config import DataConfig
plan = Plan()
for n in (1, 2):
    plan.add(Stage(kind="train", name=f"s{{n}}", config=DataConfig(size=n)))
run_parallel(plan, Path({out!r}), list(plan.stages.values()), 2, slow_stage, lambda i: False, lambda *a: None,
             print, lambda *a: None)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_study_leaves_no_stage_running(tmp_path, sig):
    """Stopped by SIGTERM (its workers end with it) or SIGKILL (each worker sees its parent gone), a study leaves no
    stage behind that a rerun would then run a second time."""
    driver = DRIVER.format(here=str(Path(__file__).parent), out=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(tmp_path.glob("*.pid"))) < 2 and time.time() < deadline:
        time.sleep(0.1)
    workers = [int(f.read_text()) for f in tmp_path.glob("*.pid")]
    assert len(workers) == 2 and all(_alive(w) for w in workers)
    os.kill(proc.pid, sig)
    proc.wait(timeout=30)
    deadline = time.time() + 20
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)
