"""The human side of a run: `report.md` tables and `plots/*.png` from results.json and the merged records.

Everything here reads results; nothing is computed that results.json does not already hold, except the
precision–recall curves, which need every item's score.
"""

import logging
from pathlib import Path

import numpy as np

from shardkit.eval.store import atomic_write

log = logging.getLogger(__name__)

YESNO_COLUMNS = ("precision", "recall", "f1", "accuracy", "auroc", "unparsed_rate")


def fmt(m: dict | None, pct: bool = True) -> str:
    """`value [lo, hi]` from a metric summary, as percentages by default; '–' when undefined."""
    if not m or m.get("value") is None:
        return "–"
    k, d = (100, 1) if pct else (1, 2)
    lo, hi = m.get("ci") or (None, None)
    ci = "" if lo is None or hi is None else f" [{lo * k:.{d}f}, {hi * k:.{d}f}]"
    return f"{m['value'] * k:.{d}f}{ci}"


def main_table(results: dict) -> str:
    rows = ["| condition | task | n | errors | " + " | ".join(YESNO_COLUMNS) + " | identity (string) | "
            "identity (embedding) |", "|" + "---|" * (len(YESNO_COLUMNS) + 6)]
    for cond, tasks in results["metrics"].items():
        for task, s in tasks.items():
            cells = [fmt(s.get(c), pct=c != "auroc") for c in YESNO_COLUMNS]
            rows.append(f"| {cond} | {task} | {s['n']} | {s['n_error']} | " + " | ".join(cells) +
                        f" | {fmt(s.get('identity_accuracy'))} | {fmt(s.get('identity_accuracy_embedding'))} |")
    return "\n".join(rows)


def tests_table(results: dict) -> str:
    rows = ["| task | A → B | ΔF1 [CI] | Δaccuracy [CI] | McNemar p | Holm p | right→wrong | wrong→right |",
            "|---|---|---|---|---|---|---|---|"]
    for t in results["tests"]:
        d = t["diffs"]
        m = t["mcnemar"]
        rows.append(f"| {t['task']} | {t['a']} → {t['b']} | {fmt(d.get('f1'))} | "
                    f"{fmt(d.get('accuracy') or d.get('identity_accuracy'))} | {m['p']:.3g} | {m['p_holm']:.3g} "
                    f"| {m['right_to_wrong']} | {m['wrong_to_right']} |")
    return "\n".join(rows)


def write_report(out: Path, results: dict, merged: dict) -> None:
    cfg = results["config"]
    lines = [
        f"# SHARD evaluation: {cfg['model']}",
        "",
        f"SHARD sha256 `{results['shard_sha256'][:16]}…`, scoring `{cfg['scoring']}`, conditions "
        f"{', '.join(results['metrics'])}, {results['n_items']} records over {results['n_clips']} clips, "
        f"seed {cfg['seed']}, "
        f"{cfg['n_boot']} clip-clustered bootstrap replicates (95% CIs). Percentages; AUROC as a fraction.",
        "",
        "Unparsed answers count as wrong and stay in every denominator; items whose audio could not be loaded "
        "are excluded and counted under *errors*. `text` is the control: the gold label written in words where "
        "the audio would be. Identity (embedding) accepts the top-1 AudioSet label by sentence-embedding "
        "similarity when it is the gold class, a class below it, or another label of the clip.",
        "",
        "## Metrics",
        "",
        main_table(results),
        "",
        "## Paired tests (B − A; exact McNemar on correctness, Holm-corrected across this table)",
        "",
        tests_table(results),
        "",
    ]
    if results.get("conditioned"):
        lines += ["## Reasoning accuracy given correct identification of the same clip", "",
                  "| condition | task | identified: acc (n) | not identified: acc (n) |", "|---|---|---|---|"]
        for cond, tasks in results["conditioned"].items():
            for task, c in tasks.items():
                lines.append(f"| {cond} | {task} | {_acc_n(c.get('identified'))} | {_acc_n(c.get('not_identified'))} |")
        lines.append("")
    lines += ["## Plots", "", "![metrics](plots/metrics.png)", "", "![precision-recall](plots/pr.png)", "",
              "![per word](plots/words.png)", ""]
    atomic_write(out / "report.md", "\n".join(lines))
    try:
        plots(out / "plots", results, merged)
    except Exception as e:  # a plotting failure must not lose a finished evaluation
        log.warning("plots failed: %s", e)


def _acc_n(c: dict | None) -> str:
    if not c or not c.get("n"):
        return "–"
    return f"{100 * c['accuracy']:.1f} ({c['n']})"


def plots(folder: Path, results: dict, merged: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    conds = list(results["metrics"])
    tasks = sorted({t for c in conds for t in results["metrics"][c]}, key=["synonym", "hypernym", "identity"].index)

    # 1. metric bars with CIs: F1 for yes/no tasks, accuracy for identity, grouped by task, one bar per condition
    fig, ax = plt.subplots(figsize=(2.2 + 2.0 * len(tasks), 3.8))
    width = 0.8 / len(conds)
    for k, cond in enumerate(conds):
        xs, vals, errs = [], [], [[], []]
        for j, task in enumerate(tasks):
            s = results["metrics"][cond].get(task)
            m = None if s is None else (s.get("f1") if task != "identity" else s.get("identity_accuracy"))
            if not m or m["value"] is None:
                continue
            lo, hi = m["ci"]
            xs.append(j + k * width)
            vals.append(m["value"])
            errs[0].append(0.0 if lo is None else max(0.0, m["value"] - lo))
            errs[1].append(0.0 if hi is None else max(0.0, hi - m["value"]))
        ax.bar(xs, vals, width, yerr=errs, capsize=3, label=cond)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(tasks))],
                  [f"{t}\n({'F1' if t != 'identity' else 'accuracy'})" for t in tasks])
    ax.set_ylim(0, 1)
    ax.set_ylabel("score (95% CI)")
    ax.legend(fontsize=8)
    ax.set_title(results["config"]["model"], fontsize=9)
    fig.tight_layout()
    fig.savefig(folder / "metrics.png", dpi=110)
    plt.close(fig)

    # 2. precision-recall per yes/no task, from scores
    yn = [t for t in tasks if t != "identity"]
    fig, axes = plt.subplots(1, max(1, len(yn)), figsize=(4 * max(1, len(yn)), 3.6), squeeze=False)
    for ax, task in zip(axes[0], yn, strict=False):
        for cond in conds:
            rows = [r for r in merged.get((cond, task), []) if r["score"] is not None and not r["error"]]
            if len(rows) < 2:
                continue
            score = np.array([r["score"] for r in rows])
            gold = np.array([r["gold"] == "yes" for r in rows])
            order = np.argsort(-score, kind="stable")
            tp = np.cumsum(gold[order])
            precision = tp / np.arange(1, len(order) + 1)
            recall = tp / max(1, gold.sum())
            ax.plot(recall, precision, label=cond)
        ax.axhline(0.5, color="grey", lw=0.5, ls=":")
        ax.set(title=task, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "pr.png", dpi=110)
    plt.close(fig)

    # 3. per-word accuracy heatmap: words × (condition, task)
    cols = [(c, t) for t in tasks for c in conds if (c, t) in merged]
    words = sorted({r["word"] for rows in merged.values() for r in rows})
    grid = np.full((len(words), len(cols)), np.nan)
    for j, key in enumerate(cols):
        for i, w in enumerate(words):
            ok = [r["correct"] for r in merged[key] if r["word"] == w and not r["error"]]
            if ok:
                grid[i, j] = np.mean([bool(x) for x in ok])
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(cols), 1.2 + 0.28 * len(words)))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(cols)), [f"{t}\n{c}" for c, t in cols], fontsize=7, rotation=45, ha="right")
    ax.set_yticks(range(len(words)), words, fontsize=7)
    fig.colorbar(im, ax=ax, label="accuracy")
    fig.tight_layout()
    fig.savefig(folder / "words.png", dpi=110)
    plt.close(fig)
