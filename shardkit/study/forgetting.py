"""FT-Large's forgetting and its mitigations, side by side: labelling (identity) against reasoning (F1, AUROC).

The seed paper finds that tuning on a million interleaved samples costs labelling. Every row that varies FT-Large
(its weights moved back toward the start, its LoRA's intruder dimensions shrunk, EWC, more replay) is a candidate
remedy; this table and plot put them beside the original and FT-Large, and mark the Pareto front of identity and
mean F1.
"""

from shardkit.eval.report import fmt, fmt_cell
from shardkit.names import YES_NO
from shardkit.study.plots import IDENTITY, panel, row_metric


def pareto(points: dict[str, tuple[float, float]]) -> set[str]:
    """Names whose (labelling, reasoning) no other point beats on both at once (ties count as not beaten)."""
    return {n for n, (x, y) in points.items()
            if not any(x2 >= x and y2 >= y and (x2, y2) != (x, y) for m, (x2, y2) in points.items() if m != n)}


def _shown(rows: list[dict]) -> list[dict]:
    """The original, FT-Large and every row that varies FT-Large (empty when no mitigation ran)."""
    large = [r for r in rows if r["name"] == "FT-Large" or (r["group"] == "ablation" and r.get("base") == "FT-Large")]
    return [r for r in rows if r["name"] == "original"] + large if len(large) >= 2 else []


def _points(rows: list[dict]) -> dict[str, tuple[float, float]]:
    """Name → (identity, mean F1) of each row with both."""
    points = {}
    for r in rows:
        ident, f1 = row_metric(r, "identity", IDENTITY), [row_metric(r, t, "f1") for t in YES_NO]
        if ident and all(f1):
            points[r["name"]] = (ident["value"], sum(m["value"] for m in f1) / 2)
    return points


def draw_forgetting(ax, rows: list[dict]) -> bool:
    """Labelling against reasoning for the original, FT-Large and each mitigation, the Pareto front joined and
    starred; False when no mitigation ran."""
    points = _points(_shown(rows))
    if len(points) < 2:
        return False
    front = pareto(points)
    for name, (x, y) in points.items():
        ax.plot(100 * x, 100 * y, "*" if name in front else "o", ms=11 if name in front else 6,
                color="tab:red" if name in front else "tab:blue")
        ax.annotate(name, (100 * x, 100 * y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    line = sorted(points[n] for n in front)
    ax.plot([100 * x for x, _ in line], [100 * y for _, y in line], color="tab:red", lw=0.8, ls="--")
    ax.set(xlabel="identity accuracy, strict and class-balanced (%)", ylabel="mean of synonym and hypernym F1 (%)",
           title="FT-Large's forgetting and its mitigations (★ Pareto front)")
    return True


def plot_forgetting(folder, rows: list[dict]) -> None:
    """`folder/forgetting.png` (`draw_forgetting`), or none when no mitigation ran (a stale one removed)."""
    panel(folder / "forgetting.png", lambda ax: draw_forgetting(ax, rows), (7, 5))


def forgetting_section(rows: list[dict]) -> list[str]:
    """FT-Large's forgetting and each mitigation of it, beside the original: labelling (identity) against reasoning
    (F1 and AUROC), the Pareto front of labelling and mean F1 marked."""
    shown = _shown(rows)
    if not shown:
        return []
    front = pareto(_points(shown))
    out = ["## Forgetting and its mitigations", "", "FT-Large against the original and each mitigation of its "
           "forgetting (rows varying FT-Large): labelling (identity, strict and class-balanced) beside reasoning. "
           "★ marks the Pareto front of identity and mean F1: no other row is better on both.", "",
           "| row | identity (strict, balanced) | synonym F1 | hypernym F1 | synonym AUROC | hypernym AUROC | front |",
           "|---|---|---|---|---|---|---|"]
    table = {}
    for r in shown:
        cells = [fmt(row_metric(r, "identity", IDENTITY))] + [fmt(row_metric(r, t, "f1")) for t in YES_NO]
        cells += [fmt(row_metric(r, t, "auroc"), pct=False) for t in YES_NO]
        table[r["name"]] = cells
        star = "★" if r["name"] in front else ""
        out.append(f"| {fmt_cell(r['name'])} | " + " | ".join(cells) + f" | {star} |")
    # a remedy that found nothing to change (no intruder dimensions, say) scores what FT-Large scores, CIs included
    same = [n for n, c in table.items() if n not in ("original", "FT-Large") and c == table.get("FT-Large")]
    if same:
        out += ["", f"{', '.join(same)}: every score and CI above equals FT-Large's, so "
                f"{'this remedy' if len(same) == 1 else 'these remedies'} changed nothing measurable here."]
    return out + ["", "![forgetting](plots/forgetting.png)", "", "*Labelling against reasoning for the original, "
                  "FT-Large and each mitigation; ★ and the dashed line: the Pareto front.*", ""]
