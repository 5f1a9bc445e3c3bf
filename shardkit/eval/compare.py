"""`shardkit compare RUN_A RUN_B`: the paired tests of one run, between two runs.

Two checkpoints (or models, or prompt styles) evaluated on the same SHARD build are compared item by item for
every condition × task both runs hold: paired clip-clustered bootstrap differences (B − A), exact McNemar on
correctness with flip counts, Holm-corrected across the family.
"""

import json
from pathlib import Path

from shardkit.errors import ShardkitError
from shardkit.eval import metrics
from shardkit.eval.report import fmt
from shardkit.eval.results import arrays


def load_run(run: Path) -> tuple[dict, dict[tuple[str, str], list[dict]]]:
    """results.json and the merged records of a finished `shardkit eval` run, by (condition, task)."""
    path = run / "results.json"
    if not path.is_file():
        raise ShardkitError(f"{run}: no results.json (is the run finished? rerun its `shardkit eval` to resume)")
    results = json.loads(path.read_text())
    merged = {}
    for f in sorted((run / "samples").glob("*/*.jsonl")):
        if ".part" not in f.name:
            merged[(f.parent.name, f.stem)] = [json.loads(line) for line in f.read_text().splitlines()]
    return results, merged


def paired_test(rows_a: list[dict], rows_b: list[dict], task: str, cloze_a: bool, cloze_b: bool, n_boot: int = 1000,
                seed: int = 0, identity_key: str = "correct") -> dict | None:
    """B against A on the items both hold (matched by item id): paired bootstrap differences and the paired test of
    the headline (`metrics.compare`), or None when they share no item. Holm correction is left to the caller, who
    knows the family."""
    by_id_b = {r["item_id"]: r for r in rows_b}
    rows_a = [r for r in rows_a if r["item_id"] in by_id_b]
    if not rows_a:
        return None
    rows_b = [by_id_b[r["item_id"]] for r in rows_a]
    clips = {c: i for i, c in enumerate(sorted({r["clip_id"] for r in rows_a}))}
    r = metrics.compare(arrays(rows_a, clips, cloze_a), arrays(rows_b, clips, cloze_b), task, n_boot=n_boot,
                        seed=seed, identity_key=identity_key)
    return metrics.as_test(task, r)


def compare_runs(run_a: Path, run_b: Path, n_boot: int = 1000, seed: int = 0) -> str:
    """Markdown table of paired tests between two finished runs; also written to RUN_B/compare_<A>.json."""
    ra, ma = load_run(Path(run_a))
    rb, mb = load_run(Path(run_b))
    if ra["shard_sha256"] != rb["shard_sha256"]:
        raise ShardkitError(f"{run_a} and {run_b} were evaluated on different SHARD builds: items cannot be paired")
    cloze = [r["config"]["scoring"] == "cloze" for r in (ra, rb)]
    tests = []
    for key in sorted(set(ma) & set(mb)):
        t = paired_test(ma[key], mb[key], key[1], *cloze, n_boot=n_boot, seed=seed)
        if t is not None:
            tests.append({"condition": key[0], **t})
    if not tests:
        raise ShardkitError(f"{run_a} and {run_b} share no condition × task with common items")
    metrics.apply_holm(tests)
    (Path(run_b) / f"compare_{Path(run_a).name}.json").write_text(json.dumps(tests, indent=2) + "\n")
    lines = [f"# {run_b} (B) vs {run_a} (A){' — mixed scoring kinds!' if len(set(cloze)) > 1 else ''}", "",
             "| condition | task | n | ΔF1 [CI] | Δaccuracy [CI] | McNemar p | Holm p | right→wrong | wrong→right |",
             "|---|---|---|---|---|---|---|---|---|"]
    for t in tests:
        d, m = t["diffs"], t["mcnemar"]
        lines.append(f"| {t['condition']} | {t['task']} | {t['n']} | {fmt(d.get('f1'))} | "
                     f"{fmt(d.get('accuracy') or d.get('identity_accuracy'))} | {m['p']:.3g} | {m['p_holm']:.3g} | "
                     f"{m['right_to_wrong']} | {m['wrong_to_right']} |")
    return "\n".join(lines)



