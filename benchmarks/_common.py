"""What every benchmark shares: machine facts, a printed table and a JSON file under benchmarks/results/.

Benchmarks measure; they never assert a speed. Each run records the machine it ran on, so a ratio is only ever
read against the numbers of the same run.
"""

import json
import os
import platform
import resource
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # as the shardkit command: models come from packages, never a hub


def quiet() -> None:
    """The tables are the output: no weight-loading bars, no library deprecation chatter."""
    import warnings

    import transformers

    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def matmul_rate(m: int, k: int, n: int, repeat: int = 5) -> float:
    """Best GFLOP/s of an [m, k] @ [k, n] float32 matmul with the threads torch uses: the peak a run is read
    against."""
    import torch

    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best / 1e9


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save(name: str, payload: dict, folder: Path = RESULTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **payload}, indent=2) + "\n")
    return path


def table(title: str, columns: list[str], rows: list[list]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="left" if c == columns[0] else "right")
    for r in rows:
        t.add_row(*(f"{v:,.3g}" if isinstance(v, float) else str(v) for v in r))
    Console(width=140).print(t)


def shard_items(out: Path) -> tuple[list[dict], str]:
    """The default SHARD build (from the bundled clips) and its audio root, built into `out` once."""
    from shardkit.benchmark.build import build, load_shard
    from shardkit.benchmark.config import BuildConfig

    if not (out / "meta.json").is_file():
        build(out, BuildConfig())
    items, meta = load_shard(out)
    return items, meta["audio_root"]
