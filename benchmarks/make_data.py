"""Data: wall time and peak memory of `shardkit make-data --size 1m`, run as a user runs it (a fresh process).

    python -m benchmarks.make_data
    python -m benchmarks.make_data --size 40k    # quick look
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import RESULTS, save, table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="1m")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder for make_data.json")
    args = p.parse_args()

    out = Path(tempfile.mkdtemp(prefix="bench-data-")) / "data"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "shardkit", "make-data", "--size", args.size, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource usage, peak RSS included
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"make-data failed: {proc.stderr.read().decode()[-2000:]}")
    disk = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    samples = sum(len(f.read_text().splitlines()) for f in out.glob("data-*.jsonl"))  # what the run really wrote
    rss = usage.ru_maxrss / 1024
    table(f"make-data --size {args.size}", ["size", "samples", "seconds", "peak RSS MB", "disk MB"],
          [[args.size, samples, seconds, rss, disk / 1e6]])
    shutil.rmtree(out.parent, ignore_errors=True)
    result = {"size": args.size, "samples": samples, "seconds": seconds, "peak_rss_mb": rss, "disk_mb": disk / 1e6}
    print(f"wrote {save('make_data', result, args.results)}")


if __name__ == "__main__":
    main()
