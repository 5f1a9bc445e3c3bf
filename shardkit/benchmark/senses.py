"""The reviewed choice of SHARD words: AudioSet label → WordNet synset of the sound's source.

First WordNet senses are often wrong for sounds (bark → tree bark, siren → sea nymph), so the mapping is a data
file a person reviews, not a lookup. Loading validates every row against the ontology and WordNet and reports
file and line for each problem.
"""

from dataclasses import dataclass
from pathlib import Path

from shardkit.errors import ShardkitError
from shardkit.resources.ontology import Ontology
from shardkit.resources.wordnet import wordnet

SENSES_PATH = Path(__file__).with_name("senses.tsv")
HEADER = ["mid", "display_name", "synset", "reason"]


@dataclass(frozen=True)
class Sense:
    mid: str
    name: str  # AudioSet display name
    synset: str  # nltk synset name, e.g. dog.n.01
    reason: str

    @property
    def word(self) -> str:
        """The word the benchmark asks about: the synset lemma the AudioSet label uses, else its head lemma.

        nltk names synsets by their first lemma, which is not always the everyday word (Pig → hog.n.03,
        Trumpet → cornet.n.01), so prefer the lemma that appears in the display name.
        """
        lemmas = [x.replace("_", " ") for x in wordnet().synset(self.synset).lemma_names()]
        parts = {p.strip().lower() for p in self.name.split(",")}
        return next((x for x in lemmas if x.lower() in parts), lemmas[0])



def _tsv_lines(path: Path, header: list[str], what: str) -> list[str]:
    """A reviewed TSV's lines, the first being `header`; an unreadable file or another header is one line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ShardkitError(f"{path}: cannot read {what} file ({e.strerror})") from e
    if not lines or lines[0].split("\t") != header:
        raise ShardkitError(f"{path}:1: header must be {'<TAB>'.join(header)}")
    return lines

def load_senses(onto: Ontology, path: Path = SENSES_PATH) -> list[Sense]:
    """Read and validate the senses file; every problem raises with `file:line`."""
    from nltk.corpus.reader.wordnet import WordNetError

    wn = wordnet()
    lines = _tsv_lines(path, HEADER, "senses")
    senses, seen_mid, seen_syn = [], {}, {}
    for n, line in enumerate(lines[1:], start=2):
        where = f"{path}:{n}"
        fields = line.split("\t")
        if len(fields) != 4 or not all(f.strip() for f in fields):
            raise ShardkitError(f"{where}: expected 4 non-empty tab-separated fields, got {len(fields)}")
        mid, name, syn, reason = (f.strip() for f in fields)
        if mid not in onto.labels:
            raise ShardkitError(f"{where}: {mid!r} is not one of the 527 AudioSet labels")
        if name != onto.labels[mid]:
            raise ShardkitError(f"{where}: display name {name!r} does not match the label index ({onto.labels[mid]!r})")
        try:
            synset = wn.synset(syn)
        except (WordNetError, ValueError) as e:
            raise ShardkitError(f"{where}: synset {syn!r} does not exist in WordNet 3.0") from e
        if synset.pos() != "n" or synset.name() != syn:
            raise ShardkitError(f"{where}: {syn!r} must be a noun synset named as nltk names it ({synset.name()})")
        for key, seen in ((mid, seen_mid), (syn, seen_syn)):
            if key in seen:
                raise ShardkitError(f"{where}: {key!r} already used on line {seen[key]}")
            seen[key] = n
        senses.append(Sense(mid=mid, name=name, synset=syn, reason=reason))
    return senses


ALIASES_PATH = Path(__file__).with_name("aliases.tsv")
ALIASES_HEADER = ["mid", "display_name", "aliases", "note"]


def load_aliases(onto: Ontology, senses: list[Sense], path: Path = ALIASES_PATH) -> dict[str, list[str]]:
    """mid → the reviewed answers accepted for identity, one row per SHARD word; problems raise with `file:line`.

    Synset lemmas are often common words for something else (Car → "machine", Toilet flush → "can"), so the accepted
    answers are a list a person reviews, not a lookup. No alias may name another AudioSet label than the word's
    class or a class below it ("alarm" is the label Alarm, not Alarm clock).
    """
    lines = _tsv_lines(path, ALIASES_HEADER, "aliases")
    label_of: dict[str, set[str]] = {}
    for mid, name in onto.labels.items():
        for part in (name, *name.split(",")):
            label_of.setdefault(part.strip().lower(), set()).add(mid)
    wanted = {s.mid: s for s in senses}
    out: dict[str, list[str]] = {}
    for n, line in enumerate(lines[1:], start=2):
        where = f"{path}:{n}"
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) != 4 or not all(fields[:3]):
            raise ShardkitError(f"{where}: expected 4 tab-separated fields (mid, display_name, aliases, note)")
        mid, name, names, _ = fields
        if mid not in wanted:
            raise ShardkitError(f"{where}: {mid!r} is not a SHARD word (senses.tsv)")
        if name != wanted[mid].name:
            raise ShardkitError(f"{where}: display name {name!r} does not match senses.tsv ({wanted[mid].name!r})")
        if mid in out:
            raise ShardkitError(f"{where}: {mid!r} already has a row")
        accepted = [a.strip() for a in names.split(";") if a.strip()]
        allowed = {mid, *onto.descendants(mid)}
        for a in accepted:
            other = label_of.get(a.lower(), set()) - allowed
            if other:
                raise ShardkitError(f"{where}: alias {a!r} names another AudioSet label "
                                    f"({', '.join(sorted(onto.labels[m] for m in other))}); leave it out")
        out[mid] = accepted
    missing = [s.name for s in senses if s.mid not in out]
    if missing:
        raise ShardkitError(f"{path}: no aliases for {', '.join(missing)}; add a row per SHARD word")
    return out
