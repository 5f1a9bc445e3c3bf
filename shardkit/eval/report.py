"""The human side of a run: `report.md` tables and `plots/*.png` from results.json and the merged records.

Everything here reads results; nothing is computed that results.json does not already hold, except the
precision–recall curves, which need every item's score.
"""

import logging
from pathlib import Path

import numpy as np

from shardkit.files import atomic_write
from shardkit.names import TASKS, YES_NO

log = logging.getLogger(__name__)

YESNO_COLUMNS = ("precision", "recall", "f1", "accuracy", "auroc", "unparsed_rate")


def fmt(m: dict | None, pct: bool = True) -> str:
    """`value [lo, hi]` from a metric summary, as percentages by default; '–' when undefined (None or NaN: AUROC
    on items of one answer only)."""
    if not m or m.get("value") is None or m["value"] != m["value"]:
        return "–"
    k, d = (100, 1) if pct else (1, 2)
    lo, hi = m.get("ci") or (None, None)
    ci = "" if lo is None or hi is None else f" [{lo * k:.{d}f}, {hi * k:.{d}f}]"
    return f"{m['value'] * k:.{d}f}{ci}"


def fmt_mde(v: float | None, pct: bool = True) -> str:
    """A minimum detectable difference, in points (or AUROC units); '–' when the design gives none."""
    if v is None or v != v:
        return "–"
    return f"{100 * v:.1f}" if pct else f"{v:.2f}"


def fmt_diff(m: dict | None, pct: bool = True) -> str:
    """A paired difference B − A with its CI, signed, so a reader sees the direction at once."""
    s = fmt(m, pct)
    return s if s == "–" or s.startswith("-") else "+" + s


def fmt_cell(text) -> str:
    """Text safe inside a markdown table cell (a "|" would split it)."""
    return str(text).replace("|", "\\|")


def fmt_p(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g}"


def fmt_n(x) -> str:
    return "–" if x is None else str(x)


IDENTITY_COLUMNS = (("identity_accuracy_balanced", "identity (strict, class-balanced)"),
                    ("identity_accuracy", "identity (strict)"), ("identity_accuracy_lenient", "identity (lenient)"))


def main_table(results: dict) -> str:
    head = ["condition", "task", "n", "errors", *YESNO_COLUMNS, *(h for _, h in IDENTITY_COLUMNS)]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cond, tasks in results["metrics"].items():
        for task, s in tasks.items():
            cells = [fmt(s.get(c), pct=c != "auroc") for c in YESNO_COLUMNS]
            cells += [fmt(s.get(k)) for k, _ in IDENTITY_COLUMNS]
            rows.append(f"| {cond} | {task} | {s['n']} | {s['n_error']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def baselines_table(results: dict) -> str:
    """The model-free baselines on the same items, each with its CI: what a score must beat."""
    base = results.get("baselines") or {}
    rows = ["| task | baseline | what it sees | score [95% CI] |", "|---|---|---|---|"]
    for task in YES_NO:
        b = base.get(task)
        if not b:
            continue
        y = b["always_yes"]
        rows.append(f"| {task} | always yes | nothing | F1 {fmt(y.get('f1'))}, accuracy {fmt(y.get('accuracy'))} |")
        for name, what in (("prior", "the candidate's yes-rate in this SHARD (in-sample: an upper bound)"),
                           ("generality", "the candidate's WordNet depth"), ("shortness", "the candidate's length")):
            m = b.get(f"candidate_{name}", {}).get("auroc")
            rows.append(f"| {task} | candidate {name} | {what} | AUROC {fmt(m, pct=False)} |")
        for cond, v in (b.get("vs_candidate_prior") or {}).items():
            rows.append(f"| {task} | {cond} − candidate prior | the model, paired on the same items | ΔAUROC "
                        f"{fmt({'value': v['diff'], 'ci': v['ci']}, pct=False)}, bootstrap p {fmt_p(v['p'])}, "
                        f"MDE {fmt_mde(v.get('mde'), pct=False)} |")
    c = (base.get("identity") or {}).get("best_constant")
    if c and c.get("answer") is not None:
        rows.append(f"| identity | best constant answer (\"{c['answer']}\", of {c['n_tried']} tried) | nothing | "
                    f"{100 * c['balanced']:.1f} class-balanced, {100 * c['micro']:.1f} plain |")
    return "\n".join(rows)


def tests_table(results: dict) -> str:
    rows = ["| task | A → B | ΔF1 [CI] | Δaccuracy [CI] | ΔAUROC [CI] (MDE) | test | p | Holm p | right→wrong | "
            "wrong→right | MDE accuracy |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in results["tests"]:
        d = t["diffs"]
        m = t["mcnemar"]
        acc = d.get("accuracy") or d.get("identity_accuracy_balanced") or d.get("identity_accuracy")
        auroc = d.get("auroc")
        mde = f" ({fmt_mde(auroc.get('mde'), pct=False)})" if auroc else ""
        rows.append(f"| {t['task']} | {t['a']} → {t['b']} | {fmt(d.get('f1'))} | {fmt(acc)} | "
                    f"{fmt(auroc, pct=False)}{mde} | {m.get('method', 'McNemar')} | {fmt_p(m.get('p'))} | "
                    f"{fmt_p(m.get('p_holm'))} | {fmt_n(m.get('right_to_wrong'))} | {fmt_n(m.get('wrong_to_right'))} | "
                    f"{fmt_mde(m.get('mde_accuracy'))} |")
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
        "Unparsed answers count as wrong in every metric (a false positive on a negative, a miss on a positive); "
        "items whose audio could not be loaded are excluded and counted under *errors*. `text` is the control: the "
        "gold label written in words where the audio would be; `<placement>-mismatched` asks the same questions over "
        "a clip of another class (no shared label, another top-level category where SHARD has one) and "
        "`<placement>-silence` over 10 s of silence: if a score does not drop there, it did not come from the "
        "audio. `<placement>-cascade` asks them with the model's own identity answer for the clip (under that "
        "placement) in words instead of the audio: where it beats its placement, the model names the sound but "
        "its reasoning does not reach what it heard. Identity (strict) accepts a reviewed alias of the "
        "gold class, or an answer whose nearest AudioSet label (MiniLM sentence embedding) is the gold class or a "
        "class below it, and never a negated mention; its headline is class-balanced (mean over gold words of "
        "each word's accuracy), so a constant answer scores 1/words. Identity (lenient) accepts any label of the "
        "clip. Under cloze scoring, yes/no items are ranked by mean log-probability per token (AUROC) and never "
        "thresholded.",
        "",
        "## Metrics",
        "",
        main_table(results),
        "",
        "## Baselines on the same items (no model, no audio)",
        "",
        "If a model's score is within a baseline's CI, the model has shown nothing beyond it.",
        "",
        baselines_table(results),
        "",
        "## Paired tests (B − A; Holm-corrected across this table)",
        "",
        "Yes/no: exact McNemar on correctness. Identity: the class-balanced sign-flip test (McNemar when every "
        "word has as many clips). Cloze: the paired clip-bootstrap p of ΔAUROC.",
        "",
        tests_table(results),
        "",
    ]
    if results.get("conditioned"):
        lines += ["## Reasoning accuracy given correct identification of the same clip", "",
                  "Identification: the strict identity verdict of the same clip. Accuracy [95% clip-bootstrap CI] "
                  "(items).", "",
                  "| condition | task | identified | not identified |", "|---|---|---|---|"]
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
    return f"{fmt({'value': c['accuracy'], 'ci': c.get('ci')})} ({c['n']})"


def plots(folder: Path, results: dict, merged: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    conds = list(results["metrics"])
    tasks = sorted({t for c in conds for t in results["metrics"][c]}, key=TASKS.index)

    # 1. metric bars with CIs: F1 for yes/no tasks, accuracy for identity, grouped by task, one bar per condition
    fig, ax = plt.subplots(figsize=(2.2 + 2.0 * len(tasks), 3.8))
    width = 0.8 / len(conds)
    for k, cond in enumerate(conds):
        xs, vals, errs = [], [], [[], []]
        for j, task in enumerate(tasks):
            s = results["metrics"][cond].get(task)
            m = None if s is None else (s.get("f1") or s.get("auroc") if task != "identity"
                                        else s.get("identity_accuracy_balanced"))
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
