"""`shardkit study --jobs N`: run up to N ready stages at once, each in a fresh process with its share of the cores.

On a small model much of a training step is elementwise work and small matmuls that a second thread barely speeds
up, so one-thread processes side by side do more work per second than one process on every core
(benchmarks/train_step measures it). A study has many independent stages (each seed's chain; the tunings and
evaluations after a base), so it runs them side by side. A stage is ready when every stage it reads is done; it
runs through the same function as alone, on cores/N threads, or on every core when no other long stage (tuning,
evaluation, attention) is running, ready, or waiting only on a running data stage (cpu-demo's stage 0 holds up
everything after it). A training step's result does not depend on the thread count (checked bitwise, 1 vs 2
threads, on stage-0 and instruct batches), so the weights are the serial run's. A killed study takes its stages
with it (SIGTERM through `finally`; SIGKILL: each worker exits when its parent is gone), so a rerun never finds a
stage still training.
"""

import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from shardkit.study.stages import Plan, Stage

_REPORTS = None  # a worker's queue back to the parent: (stage id, done, total, extra)


LONG = ("train", "eval", "attention")  # minutes each; SHARD and data stages take seconds


def _start_worker(reports, level: int) -> None:
    """A worker as `shardkit` sets up its own process: no library progress bars, the same log level."""
    global _REPORTS
    import transformers

    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
    logging.basicConfig(level=level, format="%(name)s: %(message)s")
    _REPORTS = reports


def _exit_with_parent(parent: int) -> None:
    """A killed study (even SIGKILL) must not leave stages training behind it: a rerun would run them twice."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _stop(signum, frame) -> None:
    raise SystemExit(128 + signum)  # through run_parallel's `finally`, which ends the workers


def _threads(stage: Stage, others: list[Stage], jobs: int) -> int:
    """The cores a stage gets: all of them when none of `others` (running, ready or about to be) is a long stage,
    else cores/jobs. A stage keeps its threads to the end: when a long stage becomes ready later, the two share the
    cores over-subscribed until the first ends."""
    cores = os.cpu_count() or 1
    if stage.kind not in LONG:
        return 1
    side_by_side = min(jobs, 1 + sum(s.kind in LONG for s in others))
    return max(1, cores // side_by_side)


def _run_alone(run_stage: Callable, stage: Stage, out: str, threads: int) -> float:
    """One stage in this worker process, with `threads` torch threads, through the study's own `run_stage`; its
    seconds."""
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    run_stage(stage, Path(out), lambda st, done, total, extra: _REPORTS.put((st.id, done, total, extra)),
              rank=0, world=1, barrier=lambda: None)
    return round(time.perf_counter() - t0, 1)


def run_parallel(plan: Plan, out: Path, todo: list[Stage], jobs: int, run_stage: Callable,
                 is_done: Callable[[str], bool], progress: Callable, say: Callable[[str], None],
                 finished: Callable[[Stage, float], None]) -> None:
    """Run `todo` (plan order) into `out`, up to `jobs` stages at once, each through `run_stage(stage, out, progress,
    rank, world, barrier)` (module-level: the workers import it by name); `finished(stage, seconds)` as each ends.
    A failing stage stops the others (their checkpoints stay; a rerun resumes them) and raises its error."""
    ctx = mp.get_context("spawn")  # a fresh interpreter per stage: no torch state, thread pool or model carried over
    reports = ctx.Queue()
    level = logging.getLogger().getEffectiveLevel()
    pool = ctx.Pool(jobs, initializer=_start_worker, initargs=(reports, level), maxtasksperchild=1)
    order = {st.id: n for n, st in enumerate(plan.stages.values(), 1)}
    waiting, running = list(todo), {}
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _stop) if main else None
    try:
        while waiting or running:
            ready = [s for s in waiting if all(is_done(i) for i in s.inputs.values() if i)]
            ready.sort(key=lambda s: s.kind != "train")  # tunings first: the longest, and they unlock most
            soon = [s for s in waiting if s not in ready and all(  # ready once a running seconds-long stage ends
                is_done(i) or (i in running and running[i][0].kind not in LONG) for i in s.inputs.values() if i)]
            for n, st in enumerate(ready):
                if len(running) == jobs:
                    break
                threads = _threads(st, [s for s, _ in running.values()] + ready[n + 1:] + soon, jobs)
                say(f"[{order[st.id]}/{len(plan.stages)}] {st.kind} {st.name} ({threads} thread{'s' * (threads > 1)})")
                running[st.id] = (st, pool.apply_async(_run_alone, (run_stage, st, str(out), threads)))
                waiting.remove(st)
            if not running:
                missing = sorted({i for s in waiting for i in s.inputs.values() if i and not is_done(i)})
                raise RuntimeError(f"stages wait on {missing}, which no stage of the plan makes")
            latest = []
            try:
                latest.append(reports.get(timeout=0.5))
                while True:
                    latest.append(reports.get_nowait())
            except queue.Empty:
                pass
            for sid, done, total, extra in latest[-1:]:
                if sid in running:
                    progress(running[sid][0], done, total, extra)
            for sid, (st, result) in list(running.items()):
                if result.ready():
                    seconds = result.get()  # re-raises the stage's error here
                    del running[sid]
                    finished(st, seconds)
    finally:
        pool.terminate()
        pool.join()
        if main:
            signal.signal(signal.SIGTERM, before)
