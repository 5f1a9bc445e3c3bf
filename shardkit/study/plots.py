"""The study's plots, drawn from the dict the study runner assembles: headline bars, the reasoning–labeling
trade-off, precision–recall curves per task and the training losses (PNG, matplotlib's Agg backend)."""

import logging
from pathlib import Path

import numpy as np

from shardkit.files import replacing
from shardkit.names import YES_NO
from shardkit.study.attention import draw_attention

log = logging.getLogger(__name__)

IDENTITY = "identity_accuracy_balanced"  # the headline: strict (gold class or below, no negation), class-balanced
BARS = [("synonym", "f1", "synonym F1"), ("hypernym", "f1", "hypernym F1"),
        ("identity", IDENTITY, "identity\n(strict, balanced)"),
        ("identity", "identity_accuracy_lenient", "identity\n(lenient)")]
ABLATION_MARKERS = ("s", "^", "D", "v", "P", "X", "<", ">")


def row_metric(row: dict, task: str, key: str) -> dict | None:
    """A report row's metric {value, ci, ...}, or None where it was not measured."""
    m = ((row.get("metrics") or {}).get(task) or {}).get(key)
    return m if m and m.get("value") is not None else None


def pr_curve(gold: list, score: list) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at each cut of the scores, highest first; unscored items (None) are dropped."""
    keep = [(bool(g), float(s)) for g, s in zip(gold, score, strict=True) if s is not None]
    if not keep:
        return np.zeros(0), np.zeros(0)
    g, s = np.array([k[0] for k in keep]), np.array([k[1] for k in keep])
    tp = np.cumsum(g[np.argsort(-s, kind="stable")])
    return tp / max(1, g.sum()), tp / np.arange(1, len(tp) + 1)


def _pct(m: dict) -> tuple[float, float, float]:
    """Value and its lower / upper error-bar lengths in percent; zero-length where the CI is undefined."""
    v = 100 * m["value"]
    lo, hi = m.get("ci") or (None, None)
    return v, 0.0 if lo is None else max(0.0, v - 100 * lo), 0.0 if hi is None else max(0.0, 100 * hi - v)


def save_png(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with replacing(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def panel(path: Path, drawer, figsize: tuple[float, float]) -> None:
    """One optional plot: `drawer(ax)` says whether its branch ran; if not, no file (a stale one is removed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    if drawer(ax):
        save_png(fig, path)
    else:
        plt.close(fig)
        path.unlink(missing_ok=True)


def draw(folder: Path, study: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    rows = study["rows"]
    cmap = plt.get_cmap("tab10" if len(rows) <= 10 else "tab20")
    color = {r["name"]: cmap(i % cmap.N) for i, r in enumerate(rows)}  # one colour per row across every plot
    panels = [[r for r in rows if r["group"] == "condition"], [r for r in rows if r["group"] != "condition"]]
    panels = [p for p in panels if p]

    # 1. grouped bars: the four headline metrics, one bar per row
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, prows, title in zip(axes[0], panels, ("conditions", "ablations and controls"), strict=False):
        width = 0.8 / len(prows)
        for k, r in enumerate(prows):
            pts = [(j, *_pct(m)) for j, (t, key, _) in enumerate(BARS) if (m := row_metric(r, t, key))]
            if pts:
                j, v, lo, hi = map(list, zip(*pts, strict=True))
                ax.bar([x + k * width for x in j], v, width, yerr=[lo, hi], capsize=2, color=color[r["name"]],
                       label=r["name"], error_kw={"lw": 0.8})
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(BARS))], [h for _, _, h in BARS], fontsize=8)
        ax.set(ylim=(0, 100), ylabel="% (95% CI)", title=title)
        ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    save_png(fig, folder / "bars.png")

    # 2. trade-off: labelling (x) against reasoning (y)
    fig, ax = plt.subplots(figsize=(7, 5))
    prev, markers = None, iter(ABLATION_MARKERS * 4)
    for r in rows:
        ident, f1s = row_metric(r, "identity", IDENTITY), [row_metric(r, t, "f1") for t in YES_NO]
        if not ident or not all(f1s):
            continue
        x, xlo, xhi = _pct(ident)
        ys = [_pct(m) for m in f1s]
        y, ylo, yhi = (float(np.mean([p[i] for p in ys])) for i in range(3))
        cond = r["group"] == "condition"
        ax.errorbar(x, y, xerr=[[xlo], [xhi]], yerr=[[ylo], [yhi]], fmt="o" if cond else next(markers),
                    color=color[r["name"]], mfc=color[r["name"]] if cond else "none", ms=7, capsize=2, lw=0.8,
                    label=r["name"])
        ax.annotate(r["name"], (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
        if cond:
            if prev:
                ax.annotate("", (x, y), prev, arrowprops={"arrowstyle": "->", "lw": 0.7, "color": "grey",
                                                           "shrinkA": 6, "shrinkB": 6})
            prev = (x, y)
    ax.set(xlabel="identity accuracy, strict and class-balanced (%)", ylabel="mean of synonym and hypernym F1 (%)",
           title="reasoning vs labelling")
    ax.set_xlim(left=-1, right=max(ax.get_xlim()[1], 10))  # percent axes from 0, even when nobody labels right
    ax.set_ylim(bottom=min(ax.get_ylim()[0], 0), top=max(ax.get_ylim()[1], 10))
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    save_png(fig, folder / "tradeoff.png")

    # 3. precision–recall per yes/no task; operating points get CIs only where no curve was drawn
    fig, axes = plt.subplots(1, len(YES_NO), figsize=(10, 4), squeeze=False)
    for ax, task in zip(axes[0], YES_NO, strict=True):
        curves = {r["name"]: pr_curve(**p) for r in rows if (p := (r.get("pr") or {}).get(task))}
        curves = {n: c for n, c in curves.items() if len(c[0]) >= 2}
        for r in rows:
            name = r["name"]
            if name in curves:
                ax.plot(100 * curves[name][0], 100 * curves[name][1], color=color[name], lw=1, label=name)
            rec, prec = row_metric(r, task, "recall"), row_metric(r, task, "precision")
            if rec and prec:
                (x, xlo, xhi), (y, ylo, yhi) = _pct(rec), _pct(prec)
                err = {} if curves else {"xerr": [[xlo], [xhi]], "yerr": [[ylo], [yhi]], "capsize": 2, "lw": 0.8}
                ax.errorbar(x, y, fmt="o", color=color[name], ms=5, mec="black", mew=0.5,
                            label=None if name in curves else name, **err)
        ax.set(title=task, xlabel="recall (%)", ylabel="precision (%)", xlim=(0, 101), ylim=(0, 102))
    handles: dict = {}  # one entry per row across both panels, a curve's line before a bare point
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    names = [r["name"] for r in rows if r["name"] in handles]
    axes[0][-1].legend([handles[n] for n in names], names, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    save_png(fig, folder / "pr.png")

    # 4. where attention goes: the audio's share by layer, one line per condition (the attention branch)
    panel(folder / "attention.png", lambda ax: draw_attention(ax, study), (7, 4))

    # 5. training loss against samples seen
    losses = [x for x in study.get("losses") or [] if any(e.get("loss") is not None for e in x.get("log") or [])]
    if not losses:
        (folder / "loss.png").unlink(missing_ok=True)  # a stale curve from an earlier invocation would mislead
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    spans = []
    for x in losses:
        pts = [(e["step"] * x["global_batch"], e["loss"]) for e in x["log"] if e.get("loss") is not None]
        ax.plot(*zip(*pts, strict=True), lw=1, marker="." if len(pts) < 20 else None, label=x["name"])
        spans.append(max(max(p[0] for p in pts), 1))
    if max(spans) >= 10 * min(spans):
        ax.set_xscale("log")
    ax.set(xlabel="samples seen (step × global batch)", ylabel="training loss")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    save_png(fig, folder / "loss.png")
