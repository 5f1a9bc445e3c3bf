"""AudioSet labels as WordNet senses: the audited table (`senses.tsv`) for SHARD's words, an automatic mapping for
every other label of a tuning manifest (unreviewed, listed in make-data's meta.json for review)."""

from dataclasses import dataclass

from shardkit.benchmark.relations import auto_synset
from shardkit.benchmark.senses import Sense
from shardkit.resources.ontology import Ontology


@dataclass(frozen=True)
class AutoSense(Sense):
    """A label mapped to WordNet automatically (not reviewed); `lemma` is the word that matched."""

    lemma: str = ""

    @property
    def word(self) -> str:
        return self.lemma


def label_senses(mids: list[str], onto: Ontology, senses: list[Sense]) -> dict[str, tuple[Sense | None, str]]:
    """Each mid's sense and how it was found: "senses.tsv", "automatic (how)", or (None, "none")."""
    audited = {s.mid: s for s in senses}
    out: dict[str, tuple[Sense | None, str]] = {}
    for mid in mids:
        if mid in audited:
            out[mid] = (audited[mid], "senses.tsv")
            continue
        name = onto.name(mid)
        found = auto_synset(name)
        if found is None:
            out[mid] = (None, "none")
        else:
            syn, lemma, how = found
            out[mid] = (AutoSense(mid=mid, name=name, synset=syn, reason=f"automatic ({how})", lemma=lemma),
                        f"automatic ({how})")
    return out
