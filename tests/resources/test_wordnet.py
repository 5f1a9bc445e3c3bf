from shardkit.resources.wordnet import N_SYNSETS, assemble


def test_full_wordnet_30(wn):
    assert sum(1 for _ in wn.all_synsets()) == N_SYNSETS == 117_659


def test_noun_file_joined_at_the_cut(wn):
    # data.noun is shipped in two halves; a lost newline at the join corrupts the synsets around it.
    nouns = list(wn.all_synsets("n"))
    assert len(nouns) == 82_115
    assert all(s.definition() for s in nouns)


def test_sound_senses_are_not_first_senses(wn):
    assert "tree" in wn.synsets("bark", "n")[0].definition() or "woody" in wn.synsets("bark", "n")[0].definition()
    assert wn.synset("bark.n.04").definition() == "the sound made by a dog"
    assert "nymph" in wn.synsets("siren", "n")[0].definition()
    assert wn.synsets("thunder", "n")[0].name() == "boom.n.01"


def test_assemble_is_idempotent(tmp_path):
    root = assemble(tmp_path)
    first = (root / "corpora" / "wordnet" / "data.noun").stat().st_mtime_ns
    assert assemble(tmp_path) == root
    assert (root / "corpora" / "wordnet" / "data.noun").stat().st_mtime_ns == first
