"""Interleaved audio in pre-training (the seed's open question 1), side by side: each condition from the prepended
base (LTU's way) and from each base pre-trained with the audio interleaved or mixed (`ablations.pretrain`), with
the paired difference and its Holm p from the ablation tests. Read from the gathered rows and tests only."""

from shardkit.eval.report import fmt, fmt_cell, fmt_diff, fmt_p
from shardkit.names import YES_NO
from shardkit.study.audio_use import ALPHA, passes
from shardkit.study.plots import IDENTITY, row_metric

TAG = " base"  # a variant row is "<condition> · <how> base" (study/stages.py)


def _variants(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["group"] == "ablation" and r["name"].endswith(TAG) and " · " in r["name"]]


def _how(row: dict) -> str:
    return row["name"].rsplit(" · ", 1)[1].removesuffix(TAG)


def pretrain_finding(rows: list[dict], tests: list[dict]) -> str | None:
    """The headline's line: where each pre-trained base names more or less than the prepended one (identity,
    Holm p < ALPHA) and how many of its reasoning AUROCs beat chance — labeling and reasoning, side by side."""
    variants = _variants(rows)
    if not variants:
        return None
    by_pair = {(t["a"], t["b"], t["task"]): t for t in tests}
    parts = []
    for how in dict.fromkeys(map(_how, variants)):
        mine, moved = [v for v in variants if _how(v) == how], {True: [], False: []}
        for v in mine:
            t = by_pair.get((v["base"], v["name"], "identity"))
            for sign in (+1, -1):
                if passes(t, sign):
                    moved[sign > 0].append(v["base"])
        aucs = [a for v in mine for task in YES_NO if (a := row_metric(v, task, "auroc"))]
        above = sum(a["ci"][0] is not None and a["ci"][0] > 0.5 for a in aucs)
        verb = "name" if len(moved[True]) > 1 else "names"
        parts.append(f"from the {how} base, {', '.join(moved[True]) or 'no condition'} {verb} more"
                     + (f" and {', '.join(moved[False])} less" if moved[False] else "")
                     + f"; {above} of its {len(aucs)} reasoning AUROCs exceed 0.5 outside their CI")
    return ("- **Pre-training with the audio interleaved.** Against the same condition from the prepended base "
            f"(strict balanced identity, Holm p < {ALPHA}): " + "; ".join(parts) + ".")


def pretrain_section(rows: list[dict], tests: list[dict]) -> list[str]:
    """One line per (condition, base): headline metrics with CIs, and for the variant bases each task's paired
    difference against the prepended base's row (F1, or strict balanced identity) with its Holm p."""
    variants = _variants(rows)
    if not variants:
        return []
    by_pair = {(t["a"], t["b"], t["task"]): t for t in tests}
    out = ["## Pre-training with the audio interleaved", "", "The four conditions from the prepended base (LTU's "
           "way) and from each base whose stage 0 and instruct stage saw the audio at its marker (interleaved) or "
           "half of the labeling prompts so (mixed). Δ: the variant minus the same condition from the prepended "
           "base, paired on the same items [95% CI]; p: the paired test of the task (exact McNemar on per-item "
           "correctness for yes/no, the class-balanced sign-flip test for identity), Holm among the ablation tests. "
           "An F1 change whose p is large moved the yes/no bias, not the share answered right.", "",
           "| condition | base | synonym F1 | hypernym F1 | synonym AUROC | hypernym AUROC | identity | "
           "Δ synonym F1 (Holm p) | Δ hypernym F1 (Holm p) | Δ identity (Holm p) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    names = {r["name"]: r for r in rows}
    order = [x for n in dict.fromkeys(v["base"] for v in variants)
             for x in ([names[n]] if n in names else []) + [v for v in variants if v["base"] == n]]
    for r in order:
        how = _how(r) if r in variants else "prepended"
        cells = [fmt(row_metric(r, t, "f1")) for t in YES_NO] + [fmt(row_metric(r, t, "auroc"), pct=False)
                                                                  for t in YES_NO]
        cells.append(fmt(row_metric(r, "identity", IDENTITY)))
        for task in (*YES_NO, "identity"):
            t = by_pair.get((r.get("base"), r["name"], task)) if r in variants else None
            d = (t or {}).get("diffs") or {}
            head = d.get("f1") or d.get(IDENTITY)
            cells.append(f"{fmt_diff(head)} ({fmt_p((t or {}).get('mcnemar', {}).get('p_holm'))})" if t else "–")
        out.append(f"| {fmt_cell(r['base'] if r in variants else r['name'])} | {how} | " + " | ".join(cells) + " |")
    return out + [""]
