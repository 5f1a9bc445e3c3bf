"""Labels of a tuning manifest as WordNet senses (benchmark/labels.py): audited where SHARD has the word, else
automatic and unreviewed, else none."""

from shardkit.benchmark.labels import AutoSense, label_senses
from shardkit.benchmark.relations import auto_synset
from shardkit.benchmark.senses import load_senses


def test_labels_map_to_wordnet_automatically():
    assert auto_synset("Sine wave") == ("sine_wave.n.01", "sine wave", "name")
    assert auto_synset("Mains hum")[0::2] == ("hum.n.03", "head noun")  # not busyness.n.01: a state makes no sound
    assert auto_synset("Rapping") is None


def test_audited_senses_win_and_the_rest_are_mapped_automatically(onto):
    senses = load_senses(onto)
    dog = next(s for s in senses if s.name == "Dog")
    by_name = {onto.name(m): m for m in onto.classes}
    mids = [dog.mid, by_name["Sine wave"], by_name["Rapping"]]
    mapped = label_senses(mids, onto, senses)
    assert mapped[dog.mid] == (dog, "senses.tsv")
    sense, how = mapped[by_name["Sine wave"]]
    assert isinstance(sense, AutoSense) and sense.synset == "sine_wave.n.01" and sense.word == "sine wave"
    assert how == "automatic (name)" and sense.reason == how
    assert mapped[by_name["Rapping"]] == (None, "none")
