"""The report's answers to "does the model use the audio, and does its reasoning reach what it heard?".

Three readings of the same controls: a score that does not drop with the wrong audio did not come from the audio
(`audio_warnings`); a model that reasons better from its own identity answer in words than from the audio it
named it from does not carry what it heard into its reasoning (`cascade_notes`); and on the clips it names right,
where it has certainly heard the sound, the same comparison says where the reasoning stops (`named_section`).
"""

from shardkit.eval.controls import AUDIO_CONTROLS, CASCADE
from shardkit.eval.report import fmt, fmt_diff, fmt_p
from shardkit.names import YES_NO
from shardkit.study.plots import IDENTITY

ALPHA = 0.05
OWN = "its own identity answer in words"


def audio_diff(t: dict) -> tuple[dict | None, str]:
    """An audio-control test's headline difference — AUROC for yes/no (free of the yes/no bias), strict balanced
    identity in points — and its text; (None, "–") when it was not measured."""
    d = t.get("diffs") or {}
    head = d.get("auroc") or d.get(IDENTITY)
    if head is None or head.get("value") is None:
        return None, "–"
    return head, fmt_diff(head, pct=False) if "auroc" in d else fmt_diff(head) + " points"


def passes(t: dict | None, sign: int) -> bool:
    """The test passes Holm at ALPHA with its headline difference on the `sign` side of 0."""
    m, (head, _) = (t or {}).get("mcnemar") or {}, audio_diff(t or {})
    return head is not None and sign * head["value"] > 0 and m.get("p_holm") is not None and m["p_holm"] < ALPHA


def audio_warnings(tests: list[dict]) -> list[str]:
    """Every condition × task whose score does not drop when the audio is wrong: it did not come from the audio. A
    score that rises significantly does depend on the audio, but the right clip serves it worse than a wrong one:
    said so, since "not shown to use the audio" would misread it."""
    out = []
    for t in tests:
        head, diff = audio_diff(t)
        if head is not None and not passes(t, -1):
            what = "AUROC" if "auroc" in t["diffs"] else "identity"
            heard = {"mismatched": "mismatched audio", "silence": "silence"}.get(t["b"].split(" · ")[-1], t["b"])
            p = fmt_p((t.get("mcnemar") or {}).get("p_holm"))
            if passes(t, +1):
                out.append(f"{t['a']}, {t['task']}: {what} rises with {heard} (Δ {diff}, Holm p {p}): the answers "
                           "depend on the audio, but its own clip serves them worse than a wrong one or none.")
            else:
                out.append(f"{t['a']}, {t['task']}: {what} is not shown to drop with {heard} (Δ {diff}, Holm p {p}): "
                           "this score is not shown to use the audio.")
    return out


def cascade_notes(tests: list[dict]) -> list[str]:
    """Every condition × yes/no task whose reasoning is better with the model's own label in words than with the
    audio it named it from: the model hears the sound, but its reasoning does not reach what it heard."""
    out = []
    for t in tests:
        head, diff = audio_diff(t)
        if head is not None and "auroc" in t["diffs"] and passes(t, +1):
            out.append(f"{t['a']}, {t['task']}: with its own identity answer written in words instead of the audio "
                       f"it discriminates better (Δ AUROC {diff}, Holm p {fmt_p(t['mcnemar']['p_holm'])}): it names "
                       "the sound, but its reasoning does not reach what it heard.")
    return out


def source(row: str, condition: str) -> str:
    """What a row of the named-right table reasons from."""
    if row == condition:
        return "the audio"
    tail = row.split(" · ")[-1]
    return {"mismatched": "mismatched audio", "silence": "silence", CASCADE: OWN}.get(
        tail, "the gold label in words (text control)")


def _auroc(level: dict | None, part: str) -> dict | None:
    return ((level or {}).get(part) or {}).get("auroc")


def _level(block: dict, row: str, task: str) -> dict | None:
    return next((x for x in block["levels"] if x["row"] == row and x["task"] == task), None)


def _test(block: dict, row: str, task: str) -> dict | None:
    return next((t for t in block["tests"] if t["b"] == row and t["task"] == task), None)


def _values(block: dict, row: str | None, tasks, sep: str = ", ", names: bool = True) -> str:
    """The AUROCs of `row` on the clips named right, one per task."""
    return sep.join((f"{t} " if names else "") + fmt(_auroc(_level(block, row, t), "right"), pct=False)
                    for t in tasks)


def named_notes(named: list[dict]) -> list[str]:
    """One line per condition whose reasoning, on the clips it names right, is better from its own answer in words
    than from the audio while the audio is no better there than silence or the wrong clip: it hears, it can reason
    about the name, and it does not join the two."""
    out = []
    for block in named:
        c = block["condition"]
        cascade = next((x["row"] for x in block["levels"] if x["row"].endswith(f" · {CASCADE}")), None)
        wrong = [x["row"] for x in block["levels"] if x["row"].split(" · ")[-1] in AUDIO_CONTROLS]
        tasks = [t for t in YES_NO if passes(_test(block, cascade, t), +1)
                 and not any(passes(_test(block, w, t), -1) for w in wrong)]
        if not tasks:
            continue
        tests = [_test(block, cascade, t) for t in tasks]
        deltas = ", ".join(audio_diff(t)[1] for t in tests)
        ps = ", ".join(fmt_p(t["mcnemar"]["p_holm"]) for t in tests)
        controls = "; ".join(f"from {source(w, c)} {_values(block, w, tasks)}" for w in dict.fromkeys(wrong))
        out.append(f"{c}: on the {block['right']} of {block['clips']} clips it names right, its reasoning from the "
                   f"audio (AUROC {_values(block, c, tasks)}) is no better than {controls or 'without it'}, while from "
                   f"its own answer in words it reaches {_values(block, cascade, tasks)} (Δ {deltas}, Holm p {ps}): it "
                   "hears the sound and can reason about its name, but its reasoning does not reach what it heard.")
    return out


def named_section(study: dict) -> list[str]:
    """The named-right table of the first seed, and with several training seeds each seed's key comparison."""
    named = study.get("named") or []
    if not named:
        return []
    out = ["## Where the reasoning stops: the clips each condition names right", "",
           "On a clip the model names right (strict identity) it has heard the sound, and its own answer written in "
           "words shows whether it can reason about that name. AUROC of the yes-vs-no log-odds, 95% clip-bootstrap "
           "CIs, on the clips named right and on the rest; Δ against the audio on the named clips (paired clip "
           "bootstrap, Holm within each condition's table).", ""]
    for block in named:
        c = block["condition"]
        out += [f"**{c}** names {block['right']} of {block['clips']} clips right.", "",
                "| reasoning from | synonym, named right | hypernym, named right | synonym, the rest | hypernym, the "
                "rest | Δ vs the audio, named right (Holm p) |", "|---|---|---|---|---|---|"]
        for row in dict.fromkeys(x["row"] for x in block["levels"]):
            cells = [fmt(_auroc(_level(block, row, t), part), pct=False) for part in ("right", "rest") for t in YES_NO]
            tests = [(t, _test(block, row, t)) for t in YES_NO]
            delta = "; ".join(f"{t} {audio_diff(x)[1]} ({fmt_p(x['mcnemar'].get('p_holm'))})" for t, x in tests if x)
            out.append(f"| {source(row, c)} | " + " | ".join(cells) + f" | {delta or '–'} |")
        out.append("")
    seeds = study.get("seeds") or {}
    if seeds.get("more"):
        out += ["Per training seed, on the clips each seed's model names right (AUROC synonym / hypernym; Δ own answer "
                "in words − audio, Holm p):", "", "| condition | seed | named right | the audio | silence | own answer "
                "in words | Δ own answer − audio |", "|---|---|---|---|---|---|---|"]
        per_seed = [(seeds["train"][0], named), *((int(s), v.get("named") or []) for s, v in seeds["more"].items())]
        for c in (b["condition"] for b in named):
            for seed, blocks in per_seed:
                b = next((x for x in blocks if x["condition"].split(" · ")[0] == c), None)
                if b is None:
                    continue
                rows = {source(x["row"], b["condition"]): x["row"] for x in b["levels"]}
                delta = "; ".join(f"{audio_diff(x)[1]} ({fmt_p(x['mcnemar'].get('p_holm'))})"
                                  for x in (_test(b, rows.get(OWN), t) for t in YES_NO) if x)
                cells = [_values(b, rows.get(what), YES_NO, " / ", names=False)
                         for what in ("the audio", "silence", OWN)]
                out.append(f"| {c} | {seed} | {b['right']} of {b['clips']} | " + " | ".join(cells)
                           + f" | {delta or '–'} |")
        out.append("")
    return out
