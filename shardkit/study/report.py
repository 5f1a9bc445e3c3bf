"""The study's human side: one `report.md` and four plots from the dict the study runner assembles.

A researcher reads it top to bottom: what ran and at what scale, the paper's table, the seed paper's figures beside
ours, the paired tests, then plots and timings. Nothing is computed here that `study` does not hold, except drawing
(the precision–recall curves need every item's score, which `study` carries).
"""

import logging
from pathlib import Path

from shardkit.eval.controls import CONTROL
from shardkit.eval.report import fmt, fmt_diff, fmt_mde, fmt_n, fmt_p
from shardkit.eval.report import fmt_cell as _cell
from shardkit.files import atomic_write
from shardkit.names import YES_NO
from shardkit.study.attention import attention_section
from shardkit.study.audio_use import audio_diff, audio_warnings, cascade_notes, named_notes, named_section, passes
from shardkit.study.forgetting import forgetting_section, plot_forgetting
from shardkit.study.plots import IDENTITY, draw, row_metric
from shardkit.study.pretrain import pretrain_finding, pretrain_section

log = logging.getLogger(__name__)

# (task, metric key, column heading) for the paper's table
COLUMNS = [(t, k, f"{t} {h}") for t in YES_NO for k, h in (("precision", "P"), ("recall", "R"), ("f1", "F1"))] + [
    ("identity", IDENTITY, "identity (strict, balanced)"),
    ("identity", "identity_accuracy", "identity (strict)"),
    ("identity", "identity_accuracy_lenient", "identity (lenient)"),
]


def _count(n: int) -> str:
    for div, suffix in ((1_000_000, "M"), (1_000, "K")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return f"{n:,}"


def _scale(sc: dict) -> str:
    small, large, ps, pl = sc["small"], sc["large"], sc["paper_small"], sc["paper_large"]
    ratio = f"{large / small:.3g}×" if small else "–"
    text = (f"**Scale.** FT-Small tunes on {_count(small)} samples against the paper's {_count(ps)}, FT-Large on "
            f"{_count(large)} against its {_count(pl)}: FT-Large sees {ratio} FT-Small's data "
            f"(the paper: {pl / ps:.3g}×). ")
    if small == ps and large == pl:
        text += "This is the paper's scale. "
    steps = ", ".join(f"{k} {v:,}" for k, v in sc["steps"].items())
    text += (f"Optimizer steps per tuning: {steps}; learning rate {sc['lr']:g}; "
             f"LoRA r = {sc['lora_r']}, alpha = {sc['lora_alpha']}.")
    return text + (f" {sc['note'].strip()}" if (sc.get("note") or "").strip() else "")


def _metrics_table(rows: list[dict], extra: bool) -> list[str]:
    """The paper's layout; `extra` adds what an ablation or control changes and what it is compared with."""
    head = ["condition"] + (["base", "varies"] if extra else []) + [h for _, _, h in COLUMNS]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [_cell(r["name"])] + ([_cell(r.get("base") or "–"), _cell(r.get("description") or "")] if extra else [])
        cells += [fmt(row_metric(r, t, k)) for t, k, _ in COLUMNS]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _auroc_table(rows: list[dict]) -> list[str]:
    """Threshold-free discrimination: a model that leans to one answer can still rank yes-items above no-items."""
    out = ["| row | synonym AUROC | hypernym AUROC |", "|---|---|---|"]
    for r in rows:
        out.append(f"| {_cell(r['name'])} | " + " | ".join(fmt(row_metric(r, t, "auroc"), pct=False) for t in YES_NO)
                   + " |")
    return out


def _tests_table(tests: list[dict]) -> list[str]:
    out = ["| task | A → B | ΔF1 (yes/no) or Δidentity (strict, balanced) [CI] (MDE) | ΔAUROC [CI] (MDE) | test | p | "
           "Holm p | right→wrong | wrong→right | MDE accuracy |", "|---|---|---|---|---|---|---|---|---|---|"]
    for t in tests:
        d, m = t.get("diffs") or {}, t.get("mcnemar") or {}
        head = d.get("f1") or d.get(IDENTITY)
        out.append(f"| {t['task']} | {_cell(t['a'])} → {_cell(t['b'])} | {fmt_diff(head)}{_mde(head)} | "
                   f"{fmt_diff(d.get('auroc'), pct=False)}{_mde(d.get('auroc'), pct=False)} | "
                   f"{m.get('method', 'McNemar')} | "
                   f"{fmt_p(m.get('p'))} | {fmt_p(m.get('p_holm'))} | {fmt_n(m.get('right_to_wrong'))} | "
                   f"{fmt_n(m.get('wrong_to_right'))} | {fmt_mde(m.get('mde_accuracy'))} |")
    return out


def _mde(m: dict | None, pct: bool = True) -> str:
    """" (MDE x)": the smallest true difference this design finds with 80% power at α 0.05."""
    v = (m or {}).get("mde")
    return "" if v is None else f" (MDE {fmt_mde(v, pct)})"


def _reference_table(reference: list[dict]) -> list[str]:
    out = ["| what | seed paper (reference figure, not reproduced) | this run [95% CI] | test | verdict |",
           "|---|---|---|---|---|"]
    for r in reference:
        test = r.get("test") or {}
        p = f"{test.get('method', '')}: p {fmt_p(test.get('p'))}, Holm {fmt_p(test.get('p_holm'))}" if test else "–"
        if "balance" in r:
            ours = "; ".join(f"{n} {fmt(v)}" for n, v in r["balance"].items()) + f" — best: {r['best']}"
            vs = r.get("vs_ft_small")
            p = f"best − FT-Small {fmt_diff(vs)} points, bootstrap p {fmt_p(vs.get('p'))}" if vs else "–"
        elif "a" in r:
            ours = f"{fmt(r.get('a'))} → {fmt(r.get('b'))} (original → FT-Large); Δ {fmt_diff(r.get('ours'))} points"
        else:
            ours = fmt_diff(r.get("ours")) + (" points" if r.get("ours") else "")
        out.append(f"| {_cell(r['what'])} | {_cell(r['paper'])} | {_cell(ours)} | {_cell(p)} | "
                   f"{r.get('verdict', '–')} |")
    return out


def findings(reference: list[dict]) -> list[str]:
    """The paper's claims, one line each: supported / contradicted / undetermined, and why."""
    return [f"- **{r.get('verdict', 'undetermined')}** — {r['what']} (paper: {r['paper']}): {r.get('why', '')}."
            for r in reference]


def _above(m: dict | None, value: float) -> bool:
    """The metric's CI lies above `value`."""
    return bool(m) and m["ci"][0] is not None and m["ci"][0] > value


def _below(m: dict | None, value: float) -> bool:
    """The metric's CI lies below `value`."""
    return bool(m) and m["ci"][1] is not None and m["ci"][1] < value


def one_minute(study: dict) -> list[str]:
    """What a reader can trust in one minute: can the model reason when told the label, does it hear, does its
    reasoning use what it hears, and what became of the paper's claims — each with the control that bounds it."""
    rows, tests = study["rows"], study.get("tests") or {}
    original = next((r for r in rows if r["group"] == "condition"), None)
    if original is None:
        return []
    out = []
    text = next((r for r in rows if r["condition"] == CONTROL and r.get("base") == original["name"]), None)
    aucs = [(t, row_metric(text, t, "auroc")) for t in YES_NO] if text else []
    if any(a for _, a in aucs):
        reasons = all(_above(a, 0.5) for _, a in aucs)
        out.append(f"- **Reasoning in words.** Told the label in words (text control), the {original['name']} model "
                   "ranks yes above no with AUROC " + ", ".join(f"{t} {fmt(a, pct=False)}" for t, a in aucs)
                   + (": it can answer these questions." if reasons else ": not shown to beat a coin on every task, "
                      "so no placement of the audio can show reasoning there."))
    ident, strict = row_metric(original, "identity", IDENTITY), row_metric(original, "identity", "identity_accuracy")
    const = ((study.get("baselines") or {}).get("identity") or {}).get("best_constant") or {}
    if ident and strict and const.get("answer") is not None:
        times = f"{ident['value'] / const['balanced']:.1f}×" if const["balanced"] else "–"
        beats = "above it outside the CI" if _above(ident, const["balanced"]) else "not shown to beat it"
        out.append(f"- **Hearing.** Under the strict rule the {original['name']} condition names {fmt(strict)} % of "
                   f"the clips right; class-balanced {fmt(ident)} %, {times} the best constant answer "
                   f"\"{_cell(const['answer'])}\" ({100 * const['balanced']:.1f} %), {beats}.")
    conditions = [r for r in rows if r["group"] == "condition"]
    ranked = [(r, t) for r in conditions for t in YES_NO if row_metric(r, t, "auroc")]
    above = sum(_above(row_metric(r, t, "auroc"), 0.5) for r, t in ranked)
    audio = [t for t in tests.get("audio") or [] if t["task"] in YES_NO and audio_diff(t)[0] is not None]
    dropped, rose = sum(passes(t, -1) for t in audio), sum(passes(t, +1) for t in audio)
    if ranked:
        below = sum(_below(row_metric(r, t, "auroc"), 0.5) for r, t in ranked)
        line = (f"- **Reasoning from the audio.** {above} of {len(ranked)} condition × task reasoning AUROCs exceed "
                "0.5 outside their CI" + (f" ({below} fall below it: yes ranked under no)" if below else ""))
        if audio:
            line += f"; mismatched audio or silence lowers {dropped} of the {len(audio)} reasoning scores tested"
            line += f" and raises {rose}" if rose else ""
        stops = named_notes(study.get("named") or [])
        use = ("the model is not shown to use the audio to reason" if not dropped and not rose else
               "where one rises, the answers depend on the audio but its own clip serves them worse" if not dropped
               else "where it drops, the score came from the audio")
        out.append(line + " — " + use + "."
                   + (" On the clips it names right its own answer in words reasons and the audio does not: see "
                      "\"Where the reasoning stops\"." if stops else ""))
    pretrained = pretrain_finding(rows, tests.get("ablations") or [])
    out += [pretrained] if pretrained else []
    verdicts = [r.get("verdict", "undetermined") for r in study.get("reference") or []]
    if verdicts:
        counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("supported", "contradicted", "undetermined"))
        out.append(f"- **The paper's claims.** {counts}, each below with its test.")
    return out


def _baselines_table(base: dict) -> list[str]:
    out = ["| task | baseline (no model, no audio) | score [95% CI] |", "|---|---|---|"]
    for task in YES_NO:
        b = base.get(task) or {}
        if b.get("always_yes"):
            y = b["always_yes"]
            out.append(f"| {task} | always yes | F1 {fmt(y.get('f1'))}, P {fmt(y.get('precision'))}, R "
                       f"{fmt(y.get('recall'))} |")
        for name in ("prior", "generality", "shortness"):
            m = (b.get(f"candidate_{name}") or {}).get("auroc")
            if m:
                out.append(f"| {task} | candidate only: {name} | AUROC {fmt(m, pct=False)} |")
    c = (base.get("identity") or {}).get("best_constant") or {}
    if c.get("answer") is not None:
        out.append(f"| identity | best constant answer \"{_cell(c['answer'])}\" (of {c['n_tried']} tried) | "
                   f"{100 * c['balanced']:.1f} (strict, balanced); {100 * c['micro']:.1f} (strict) |")
    return out


def _within(m: dict | None, value: float | None) -> bool:
    """True if the metric's CI contains the value (or the CI is unknown)."""
    if not m or value is None:
        return False
    lo, hi = m.get("ci") or (None, None)
    return lo is None or hi is None or lo <= value <= hi


def baseline_warnings(rows: list[dict], base: dict) -> list[str]:
    """What a reader must know first: every row whose score a baseline without model or audio also reaches."""
    out = []
    const = ((base.get("identity") or {}).get("best_constant") or {}).get("balanced")
    for r in rows:
        for task in YES_NO:
            yes = ((base.get(task) or {}).get("always_yes") or {}).get("f1") or {}
            f1, auc = row_metric(r, task, "f1"), row_metric(r, task, "auroc")
            if auc and (auc["ci"][0] is None or auc["ci"][0] <= 0.5):
                out.append(f"{r['name']}, {task}: AUROC {fmt(auc, pct=False)} does not exceed 0.5 — no better than "
                           f"a coin.")
            if f1 and yes.get("value") is not None and _within(f1, yes["value"]):
                out.append(f"{r['name']}, {task}: F1 {fmt(f1)} is within reach of answering always yes "
                           f"({fmt(yes)}).")
        ident = row_metric(r, "identity", IDENTITY)
        if ident and const is not None and (ident["ci"][0] is None or ident["ci"][0] <= const):
            out.append(f"{r['name']}, identity: {fmt(ident)} does not exceed the best constant answer "
                       f"({100 * const:.1f}).")
    return out


def _value(v: float | None, pct: bool) -> str:
    return "–" if v is None else f"{100 * v:.1f}" if pct else f"{v:.2f}"


def seeds_section(study: dict) -> list[str]:
    """Each condition's headline in every training seed beside the first seed's CI, each claim's verdict per seed,
    and each audio-control test per seed: what holds across training runs, not only across clips."""
    sd = study.get("seeds")
    if not sd:
        return []
    first, more = sd["train"][0], sd["more"]
    heads = [f"seed {s}" for s in sd["train"]]
    out = ["## Across training seeds", "", f"Every tuning (stage 0 included) ran once per training seed "
           f"({', '.join(map(str, sd['train']))}); data, SHARD and evaluation are the same in each. The tables above "
           f"are seed {first}'s. Below, each condition's headline in every seed: the between-seed SD beside the first "
           "seed's clip-bootstrap CI. A verdict in \"What this study found\" stands only where every seed reaches it.",
           "", "| row | metric | " + " | ".join([f"{heads[0]} [95% CI]", *heads[1:]]) + " | between-seed SD |",
           "|---|---|" + "---|" * (len(heads) + 1)]
    rows = {r["name"]: r for r in study["rows"]}
    for name, cells in sd["spread"].items():
        for key, c in cells.items():
            task, metric = key.split(" ", 1)
            pct = metric != "auroc"
            label = {"f1": "F1", "auroc": "AUROC", "identity_accuracy_balanced": "strict, balanced",
                     "identity_accuracy": "strict"}[metric]
            ci = fmt(row_metric(rows[name], task, metric), pct=pct)
            vals = [ci, *(_value(v, pct) for v in c["values"][1:])]
            sd_text = f"{100 * c['sd']:.1f} points" if pct else f"{c['sd']:.3f}"
            out.append(f"| {_cell(name)} | {task} {label} | " + " | ".join(vals) + f" | {sd_text} |")
    out += ["", "| claim | " + " | ".join(heads) + " | verdict |", "|---|" + "---|" * (len(heads) + 1)]
    for r in study.get("reference") or []:
        by = r.get("by_seed") or {}
        out.append(f"| {_cell(r['what'])} | " + " | ".join(by.get(str(s), "–") for s in sd["train"])
                   + f" | {r.get('verdict', '–')} |")
    def family(tests: dict) -> list[dict]:
        return (tests.get("audio") or []) + (tests.get("cascade") or [])

    audio = [(t["a"], t["b"], t["task"]) for t in family(study.get("tests") or {})]
    if audio:
        out += ["", "Does the model use the audio, and does its reasoning reach what it heard, per seed (B − A: AUROC "
                "for yes/no, strict balanced identity in points; Holm p within each seed's table):", "",
                "| A → B | task | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(heads)]
        per_seed = [family(study.get("tests") or {}), *(family(more[str(s)]["tests"]) for s in sd["train"][1:])]
        for a, b, task in audio:
            cells = []
            for tests in per_seed:
                t = next((x for x in tests if x["a"] == a and x["b"] == b and x["task"] == task), None)
                head, diff = audio_diff(t or {})
                holm = fmt_p((t.get("mcnemar") or {}).get("p_holm")) if t else "–"
                cells.append(diff if head is None else f"{diff} (Holm p {holm})")
            out.append(f"| {_cell(a)} → {_cell(b)} | {task} | " + " | ".join(cells) + " |")
    return out + [""]


HOW_TO_READ = (
    "**How to read this.** Figures are percentages with 95% confidence intervals from a clip-clustered bootstrap "
    "(items of one clip are resampled together). Differences are B − A in percentage points. Yes/no claims are "
    "tested with exact McNemar on per-item correctness of the same items under A and B; identity with the "
    "class-balanced sign-flip test (McNemar when every word has as many clips); Holm's correction runs within each "
    "table. Identity (strict) accepts a reviewed alias of the gold class, or an answer whose nearest AudioSet label "
    "(MiniLM sentence embedding) is the gold class or a class below it, never a negated mention; the headline is "
    "class-balanced (mean over gold words), so a constant answer scores 1/words. Identity (lenient) accepts any "
    "label of the clip. An unparsed answer is wrong in every metric. right→wrong and wrong→right count items that "
    "changed. MDE is the minimum detectable difference: the smallest true difference the design finds with 80% "
    "power at α 0.05 (2.8 × the paired bootstrap standard error; for accuracy, from the observed share of "
    "discordant items). A difference smaller than its MDE that is not significant is undetermined, not absent.")


def write_report(out: Path, study: dict) -> None:
    """Write `out/report.md` and `out/plots/*.png`; plots first, so a finished report.md means a finished report."""
    plots = out / "plots"
    try:
        draw(plots, study)
        plot_forgetting(plots, study["rows"])
    except Exception as e:  # a plotting failure must not lose a finished study
        log.warning("study plots failed: %s", e)
    sh, rows, tests = study["shard"], study["rows"], study.get("tests") or {}
    lines = [f"# SHARD study: {study['name']}", "", study.get("description", "").strip(), "",
             f"```\n{study['command']}\n```", "",
             f"Model `{study['model']}` on `{study['device']}` in `{study['dtype']}`, scoring `{study['scoring']}`; "
             f"SHARD sha256 `{sh['sha256'][:16]}…`, {sh['n_items']:,} items over {sh['n_clips']:,} clips"
             + (f"; evaluated on the first {sh['limit']} items of each task only." if sh.get("limit") else "."), "",
             _scale(study["scale"]), ""]
    if study.get("reference"):
        lines += ["## What this study found", "", *one_minute(study), "",
                  "Each claim of the seed paper, judged on this run: supported (the paired test passes Holm at 0.05 "
                  "and the CI lies on the paper's side), contradicted (the same on the other side) or undetermined. "
                  "Read it with the controls and baselines below.", ""]
        lines += findings(study["reference"]) + [""]
    base = study.get("baselines") or {}
    warnings = (audio_warnings(tests.get("audio") or []) + cascade_notes(tests.get("cascade") or [])
                + named_notes(study.get("named") or []) + baseline_warnings(rows, base))
    lines += ["## Read this first: what the controls and baselines already reach", ""]
    lines += ([f"- {w}" for w in warnings] if warnings else ["- Every row beats every baseline below, outside its CI."])
    lines += ["", "Baselines on the same items, with no model and no audio:", ""] + _baselines_table(base) + [""]
    lines += ["## The paper's table", ""]
    lines += _metrics_table([r for r in rows if r["group"] == "condition"], extra=False) + [""]
    lines += seeds_section(study)
    others = [r for r in rows if r["group"] != "condition"]
    if others:
        lines += ["## Ablations and controls", ""] + _metrics_table(others, extra=True) + [""]
    if any(row_metric(r, t, "auroc") for r in rows for t in YES_NO):
        lines += ["## Discrimination, free of the yes/no bias", "", "F1 depends on where a model puts its yes/no "
                  "boundary: on SHARD's balanced items, answering yes to everything scores precision 50, recall 100, "
                  "F1 66.7. AUROC of the yes-vs-no log-odds asks only whether yes-items rank above no-items "
                  "(0.5: chance).", ""] + _auroc_table(rows) + [""]
    if study.get("reference"):
        lines += ["## Seed paper vs this run", "", "The seed paper's column repeats its published figures "
                  "for comparison; they were not reproduced here.", ""]
        lines += _reference_table(study["reference"]) + [""]
    for key, title in (("claims", "The paper's claims: each condition against the original"),
                       ("audio", "Does the model use the audio? Each condition against itself over the wrong audio"),
                       ("cascade", "Does the reasoning reach what the model heard? Each condition against itself with "
                                   "its own identity answer in words instead of the audio"),
                       ("ablations", "Ablations and controls vs their base")):
        if tests.get(key):
            lines += [f"## {title} (Holm-corrected within this table)", ""]
            lines += _tests_table(tests[key]) + [""]
    lines += named_section(study)
    lines += forgetting_section(rows)
    lines += pretrain_section(rows, tests.get("ablations") or [])
    lines += attention_section(study)
    lines += [HOW_TO_READ, "", "## Plots", "",
              "![bars](plots/bars.png)", "", "*Each row's headline metrics with 95% CIs; conditions left, "
              "ablations and controls right.*", "",
              "![trade-off](plots/tradeoff.png)", "", "*Labelling (identity, strict and class-balanced) against "
              "reasoning (mean of synonym and hypernym F1). The vertical bar spans the means of the two F1 CIs' "
              "lower and upper bounds, not a CI of the mean; arrows follow the conditions in order.*", "",
              "![precision-recall](plots/pr.png)", "", "*Precision–recall from the yes-vs-no log-odds of each "
              "item; markers are the operating points of the parsed answers.*", ""]
    if study.get("losses"):
        lines += ["![training loss](plots/loss.png)", "", "*Training loss against samples seen (step × global "
                  "batch), one line per tuning.*", ""]
    lines += ["## Stages", "", "Each stage lives in `stages/<id>/`; seconds are those of the run that made it.", "",
              "| stage | kind | id | seconds | cached |", "|---|---|---|---|---|"]
    stages = study.get("stages") or []
    for s in stages:
        secs = "–" if s.get("seconds") is None else f"{s['seconds']:.1f}"
        lines.append(f"| {_cell(s.get('name', ''))} | {s['kind']} | `{s['id']}` | {secs} | "
                     f"{'yes' if s.get('cached') else 'no'} |")
    total = sum(s.get("seconds") or 0 for s in stages)
    lines += ["", f"All stages together: {total / 60:.1f} min. Wall time of this invocation: {study['seconds']:.1f} s "
              f"({study['seconds'] / 60:.1f} min).", ""]
    atomic_write(out / "report.md", "\n".join(lines))
