"""The study's attention branch: where each condition's attention goes, and whether interleaving moves it.

Each condition named in `ablations.attention` has its own `shardkit attention` stage (its model, its placement).
Here their results are read back, each condition is paired with the original on the items both measured (the
audio's share of the answer position's and the candidate's attention, averaged over layers and heads; a paired
clip bootstrap, Holm within the table), and the report gets a table and a plot of the audio's share by layer.
"""

import json
from pathlib import Path

import numpy as np

from shardkit.eval.report import fmt, fmt_diff, fmt_p
from shardkit.study.preset import CONDITIONS, StudyConfig

QUERIES = ("answer", "candidate")


def attention_of(cfg: StudyConfig, folders: dict[str, Path]) -> dict | None:
    """Condition → its placement's summary (`attention.json`), and the paired tests against the original."""
    if not folders:
        return None
    from shardkit.eval import metrics
    from shardkit.stats import paired_bootstrap_diff, weighted_mean

    runs = {name: json.loads((f / "attention.json").read_text()) for name, f in folders.items()}
    out = {"roles": next(iter(runs.values()))["roles"], "conditions": {}, "tests": []}
    items = {}
    for name, run in runs.items():
        ((placement, summary),) = run["placements"].items()
        out["conditions"][name] = {"placement": placement, "layers": summary["layers"], "n": summary["n"],
                                   **{q: summary[q] for q in QUERIES}, "over_layers": summary["over_layers"]}
        per = summary["items"]
        items[name] = {i: (c, v) for i, c, v in zip(per["ids"], per["clips"], per["over_layers"], strict=True)}
    original = CONDITIONS["original"]
    audio = out["roles"].index("audio")
    if original in items:
        for name in (n for n in items if n != original):
            both = sorted(set(items[original]) & set(items[name]))
            if not both:
                continue
            clips = {c: k for k, c in enumerate(sorted({items[original][i][0] for i in both}))}
            cluster = np.array([clips[items[original][i][0]] for i in both])
            for qi, q in enumerate(QUERIES):
                a = np.array([items[original][i][1][qi][audio] for i in both], dtype=float)  # null → NaN
                b = np.array([items[name][i][1][qi][audio] for i in both], dtype=float)
                ok = ~(np.isnan(a) | np.isnan(b))
                if not ok.any():
                    continue
                d = paired_bootstrap_diff(lambda x, w: weighted_mean(x["x"], w), {"x": a[ok]}, {"x": b[ok]},
                                          cluster[ok], cfg.eval.n_boot, cfg.seed)
                out["tests"].append({"a": original, "b": name, "query": q, "n": int(ok.sum()),
                                     "diffs": {"audio": {"value": d["diff"], "ci": [d["lo"], d["hi"]], "p": d["p"],
                                                         "mde": d["mde"]}},
                                     "mcnemar": {"p": d["p"], "method": "paired clip bootstrap"}})
        if out["tests"]:
            metrics.apply_holm(out["tests"])
    return out


def attention_section(study: dict) -> list[str]:
    """The report's table: each condition's audio share (answer position and candidate, over layers and heads),
    its peak layer, and the paired difference from the original."""
    att = study.get("attention")
    if not att:
        return []
    out = ["## Where attention goes", "",
           "The share of attention that the answer position (where yes/no is read) and the candidate's tokens give "
           "to the audio, averaged over layers and heads, with 95% clip-bootstrap CIs; Δ against the original on "
           "the same items (paired clip bootstrap, Holm within the table). Sink = the first token and BOS. "
           "`shardkit attention` gives the same per layer and head.", "",
           "| condition | placement | answer → audio | answer → sink | candidate → audio | peak layer (answer → "
           "audio) | Δ answer → audio vs original (Holm p) |", "|---|---|---|---|---|---|---|"]
    tests = {(t["b"], t["query"]): t for t in att["tests"]}
    for name, c in att["conditions"].items():
        audio = np.array(c["answer"]["audio"]["mean"], dtype=float)  # null (JSON's NaN) → NaN
        peak = int(np.nanargmax(audio)) if not np.all(np.isnan(audio)) else None
        t = tests.get((name, "answer"))
        delta = "–" if t is None else (f"{fmt_diff(t['diffs']['audio'])} points "
                                       f"({fmt_p(t['mcnemar'].get('p_holm'))})")
        out.append(f"| {name} | {c['placement']} | {fmt(_over(c, 'answer', 'audio'))} | "
                   f"{fmt(_over(c, 'answer', 'sink'))} | {fmt(_over(c, 'candidate', 'audio'))} | "
                   f"{'–' if peak is None else c['layers'][peak]} | {delta} |")
    out += _sink_caveat(att["conditions"])
    return out + ["", "![attention by layer](plots/attention.png)", "", "*The audio's share of the answer "
                  "position's attention by layer, one line per condition, with its 95% clip-bootstrap band.*", ""]


def _sink_caveat(conditions: dict) -> list[str]:
    """Prepended audio stands at the sequence's start, where the attention sink is: when the sink's share differs
    that much between placements, the audio's larger share is partly the sink's, and the reader must be told."""
    sink = {n: _over(c, "answer", "sink")["value"] for n, c in conditions.items()}
    pre = [n for n, c in conditions.items() if c["placement"] == "prepended" and sink[n] is not None]
    inter = [n for n, c in conditions.items() if c["placement"] == "interleaved" and sink[n] is not None]
    if not pre or not inter or max(sink[n] for n in inter) - min(sink[n] for n in pre) < 0.10:
        return []
    a, b = min(pre, key=sink.get), max(inter, key=sink.get)
    return ["", f"Prepended, the audio stands where the attention sink is: the answer position gives the sink "
            f"{100 * sink[a]:.1f}% ({a}) against {100 * sink[b]:.1f}% interleaved ({b}), so part of the prepended "
            "audio's larger share is the sink's. A larger share is not by itself more use of the audio: the audio "
            "controls say whether it is used."]


def _over(c: dict, query: str, role: str) -> dict:
    m = c["over_layers"][query][role]
    return {"value": m["mean"], "ci": [m["lo"], m["hi"]]}


def draw_attention(ax, study: dict) -> bool:
    """The audio's share of the answer position's attention by layer, one line per condition; False when the study
    measured none."""
    att = study.get("attention")
    if not att:
        return False
    for name, c in att["conditions"].items():
        mean, lo, hi = (np.array(c["answer"]["audio"][k], dtype=float) for k in ("mean", "lo", "hi"))
        ax.plot(c["layers"], mean, marker=".", label=f"{name} ({c['placement']})")
        ax.fill_between(c["layers"], lo, hi, alpha=0.2)
    ax.set(xlabel="layer", ylabel="answer position → audio", title="share of attention on the audio")
    ax.legend(fontsize=8)
    return True
