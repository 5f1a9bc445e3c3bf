"""FT-Large's forgetting and its mitigations, side by side: labelling (identity) against reasoning (F1, AUROC).

The seed paper finds that tuning on a million interleaved samples costs labelling. Every row that varies FT-Large
(today: its weights moved back toward the start, `ablations.interpolate`) is a candidate remedy; this table puts
them beside the original and FT-Large, and marks the Pareto front of identity and mean F1.
"""

from shardkit.eval.report import fmt, fmt_cell
from shardkit.names import YES_NO
from shardkit.study.plots import IDENTITY, row_metric


def pareto(points: dict[str, tuple[float, float]]) -> set[str]:
    """Names whose (labelling, reasoning) no other point beats on both at once (ties count as not beaten)."""
    return {n for n, (x, y) in points.items()
            if not any(x2 >= x and y2 >= y and (x2, y2) != (x, y) for m, (x2, y2) in points.items() if m != n)}


def forgetting_section(rows: list[dict]) -> list[str]:
    """FT-Large's forgetting and each mitigation of it, beside the original: labelling (identity) against reasoning
    (F1 and AUROC), the Pareto front of labelling and mean F1 marked."""
    large = [r for r in rows if r["name"] == "FT-Large" or (r["group"] == "ablation" and r.get("base") == "FT-Large")]
    if len(large) < 2:
        return []
    shown = [r for r in rows if r["name"] == "original"] + large
    points = {}
    for r in shown:
        ident, f1 = row_metric(r, "identity", IDENTITY), [row_metric(r, t, "f1") for t in YES_NO]
        if ident and all(f1):
            points[r["name"]] = (ident["value"], sum(m["value"] for m in f1) / 2)
    front = pareto(points)
    out = ["## Forgetting and its mitigations", "", "FT-Large against the original and each mitigation of its "
           "forgetting (rows varying FT-Large): labelling (identity, strict and class-balanced) beside reasoning. "
           "★ marks the Pareto front of identity and mean F1: no other row is better on both.", "",
           "| row | identity (strict, balanced) | synonym F1 | hypernym F1 | synonym AUROC | hypernym AUROC | front |",
           "|---|---|---|---|---|---|---|"]
    for r in shown:
        cells = [fmt(row_metric(r, "identity", IDENTITY))] + [fmt(row_metric(r, t, "f1")) for t in YES_NO]
        cells += [fmt(row_metric(r, t, "auroc"), pct=False) for t in YES_NO]
        star = "★" if r["name"] in front else ""
        out.append(f"| {fmt_cell(r['name'])} | " + " | ".join(cells) + f" | {star} |")
    return out + [""]
