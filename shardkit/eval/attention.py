"""`shardkit attention`: where each placement's attention goes on SHARD's yes/no questions.

The seed paper's explanation of interleaving is an attention claim: with the audio at its marker, the tokens after
it (the candidate, the answer position) can read text and audio together. This measures it. For every yes/no item
and placement, the model reads the question once (eager attention, hooks; `models/attention.py`) and reports the
share of attention that the answer position and the candidate's tokens give to the first token (the attention
sink), the text before the audio, the audio and the text after it, per layer (per head with `per_head`). Shares
are averaged over items with a 95% clip-bootstrap CI (items of a clip are resampled together), and the two
placements are compared layer by layer with the paired difference of the audio share.
"""

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from shardkit.errors import ShardkitError
from shardkit.eval.config import AttentionConfig
from shardkit.eval.results import json_safe
from shardkit.eval.scoring import PromptStyle, make_request
from shardkit.files import atomic_write
from shardkit.stats import cluster_weights

QUERIES = ("answer", "candidate")  # the position read for yes/no; the tokens of the candidate word


def mean_ci(values: np.ndarray, cluster: np.ndarray, n_boot: int, seed: int) -> dict:
    """Item values [n, ...] → their mean with a clip-bootstrap CI, elementwise: {"mean", "lo", "hi"} arrays [...].
    Items whose value is NaN (no candidate token found) are left out of that element's mean."""
    flat = values.reshape(len(values), -1)  # [n, k]
    ok = ~np.isnan(flat)
    x = np.where(ok, flat, 0.0)
    w = cluster_weights(cluster, n_boot, seed)  # [r, n]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = x.sum(0) / ok.sum(0)
        reps = (w @ x) / (w @ ok)  # [r, k]
    lo, hi = np.nanquantile(reps, [0.025, 0.975], axis=0)
    shape = values.shape[1:]
    return {"mean": mean.reshape(shape), "lo": lo.reshape(shape), "hi": hi.reshape(shape)}


def measure(cfg: AttentionConfig, out: Path, progress: Callable[[int, int], None] | None = None) -> dict:
    """Run every placement over the SHARD items; write `out/attention.json` and `out/plots/` (audio_by_layer.png,
    roles.png) and return what the JSON holds. `progress(done, total)` counts questions."""
    from shardkit.benchmark.build import load_shard
    from shardkit.models.attention import ROLES
    from shardkit.models.registry import load_model

    items, meta = load_shard(Path(cfg.shard))
    chosen = [i for t in cfg.tasks for i in [x for x in items if x["task"] == t][:cfg.limit]]
    if not chosen:
        raise ShardkitError(f"{cfg.shard}: no items of tasks {', '.join(cfg.tasks)}")
    adapter = load_model(cfg.model, cfg.device, cfg.dtype)
    adapter.batch_size = cfg.batch_size
    style = PromptStyle(cfg.position, cfg.cue)
    clips = {c: k for k, c in enumerate(sorted({i["clip"]["id"] for i in chosen}))}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"config": asdict(cfg), "shard_sha256": meta["sha256"], "roles": list(ROLES),
                    "queries": list(QUERIES), "n_items": len(chosen), "n_clips": len(clips), "placements": {}}
    values = {}
    total, step = len(chosen) * len(cfg.placements), 4 * cfg.batch_size
    for k, placement in enumerate(cfg.placements):
        requests = [make_request(i, placement, "yesno", meta["audio_root"], style) for i in chosen]
        got = []
        for lo in range(0, len(chosen), step):  # in blocks, for the progress bar
            got += adapter.attention(requests[lo:lo + step], [i["candidate"] for i in chosen[lo:lo + step]],
                                     cfg.layers)
            if progress:
                progress(k * len(chosen) + len(got), total)
        ok = [j for j, r in enumerate(got) if r.error is None]
        if not ok:
            raise ShardkitError(f"{placement}: every item failed, e.g. {got[0].error}")
        arr = np.array([got[j].value for j in ok], dtype=np.float64)  # [n, layers, heads, 2, roles]
        cluster = np.array([clips[chosen[j]["clip"]["id"]] for j in ok])
        values[placement] = (arr, cluster, [chosen[j]["id"] for j in ok])
        heads = mean_ci(arr, cluster, cfg.n_boot, cfg.seed) if cfg.per_head else None
        mean = mean_ci(arr.mean(2), cluster, cfg.n_boot, cfg.seed)  # over heads: [layers, 2, roles]
        over = arr.mean((1, 2))  # each item's mean over layers and heads: [n, 2, roles]
        overall = mean_ci(over, cluster, cfg.n_boot, cfg.seed)
        result["placements"][placement] = {
            "n": len(ok), "errors": len(got) - len(ok),
            "layers": list(cfg.layers) if cfg.layers else list(range(arr.shape[1])),
            **{q: {r: {key: mean[key][:, qi, ri].tolist() for key in ("mean", "lo", "hi")}
                   for ri, r in enumerate(ROLES)} for qi, q in enumerate(QUERIES)},
            "over_layers": {q: {r: {key: float(overall[key][qi, ri]) for key in ("mean", "lo", "hi")}
                                for ri, r in enumerate(ROLES)} for qi, q in enumerate(QUERIES)},
            "items": {"ids": values[placement][2], "clips": [chosen[j]["clip"]["id"] for j in ok],
                      "over_layers": over.tolist()},  # per item, for paired tests between runs
            **({"per_head": {key: heads[key].tolist() for key in ("mean", "lo", "hi")}} if heads else {}),
        }
    if len(values) == 2:
        result["audio_share_difference"] = _paired_audio_difference(values, cfg, ROLES.index("audio"))
    atomic_write(out / "attention.json", json.dumps(json_safe(result), indent=1))  # strict JSON: NaN is null
    draw(out / "plots", result)
    return result


def _paired_audio_difference(values: dict, cfg: AttentionConfig, audio: int) -> dict:
    """Interleaved − prepended audio share of each query set, per layer, on the items both placements measured,
    with the paired clip-bootstrap CI (the same clip draws for both)."""
    (pa, (a, ca, ia)), (pb, (b, _, ib)) = values.items()
    both = sorted(set(ia) & set(ib))
    ka, kb = ({item: j for j, item in enumerate(ids)} for ids in (ia, ib))
    xa = a[[ka[x] for x in both]].mean(2)[..., audio]  # [n, layers, 2]
    xb = b[[kb[x] for x in both]].mean(2)[..., audio]
    d = mean_ci(xb - xa, ca[[ka[x] for x in both]], cfg.n_boot, cfg.seed)
    return {"a": pa, "b": pb, "n": len(both),
            **{q: {key: d[key][:, qi].tolist() for key in ("mean", "lo", "hi")} for qi, q in enumerate(QUERIES)}}


def draw(folder: Path, result: dict) -> None:
    """`audio_by_layer.png`: the audio's share of attention per layer, one line (with its CI band) per placement,
    for the answer position and the candidate; `roles.png`: every role's share at the answer position, layers ×
    roles, one panel per placement."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    placements = result["placements"]
    fig, axes = plt.subplots(1, len(QUERIES), figsize=(5 * len(QUERIES), 3.6), sharey=True)
    for ax, q in zip(np.atleast_1d(axes), QUERIES, strict=True):
        for name, p in placements.items():
            a = p[q]["audio"]
            ax.plot(p["layers"], a["mean"], marker="o", label=name)
            ax.fill_between(p["layers"], a["lo"], a["hi"], alpha=0.2)
        ax.set(title=f"{q} position(s)", xlabel="layer", ylabel="share of attention on the audio")
    np.atleast_1d(axes)[0].legend()
    fig.tight_layout()
    fig.savefig(folder / "audio_by_layer.png", dpi=100)
    plt.close(fig)
    roles = result["roles"]
    fig, axes = plt.subplots(1, len(placements), figsize=(5 * len(placements), 3.2), squeeze=False,
                             layout="constrained")
    for ax, (name, p) in zip(axes[0], placements.items(), strict=True):
        grid = np.array([p["answer"][r]["mean"] for r in roles])  # [roles, layers]
        im = ax.imshow(grid, aspect="auto", vmin=0, vmax=1, cmap="viridis")
        ticks = list(range(0, len(p["layers"]), max(1, len(p["layers"]) // 8)))
        ax.set(title=f"{name}: answer position", xlabel="layer", yticks=range(len(roles)), yticklabels=roles,
               xticks=ticks, xticklabels=[p["layers"][t] for t in ticks])
    fig.colorbar(im, ax=axes[0].tolist(), label="share of attention")
    fig.savefig(folder / "roles.png", dpi=100)
    plt.close(fig)
