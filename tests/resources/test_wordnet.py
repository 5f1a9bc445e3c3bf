from shardkit.resources.wordnet import N_SYNSETS, assemble, synset_count


def test_full_wordnet_30(wn):
    assert sum(1 for _ in wn.all_synsets()) == N_SYNSETS == 117_659 == synset_count()  # doctor's quick count agrees


def test_quick_count_sees_a_lost_newline(tmp_path):
    """The fault `assemble` repairs (data.noun cut in two without its newline) is what doctor's count must catch."""
    root = assemble(tmp_path)
    noun = root / "corpora" / "wordnet" / "data.noun"
    lines = noun.read_bytes().split(b"\n")
    cut = len(lines) // 2
    noun.write_bytes(b"\n".join([*lines[:cut - 1], lines[cut - 1] + lines[cut], *lines[cut + 1:]]))
    assert synset_count(root) == N_SYNSETS - 1


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
