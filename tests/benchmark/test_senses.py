import pytest

from shardkit.benchmark.senses import SENSES_PATH, load_senses
from shardkit.errors import ShardkitError


def test_78_reviewed_words(senses, wn, onto):
    assert len(senses) == 78
    assert len({s.mid for s in senses}) == len({s.synset for s in senses}) == 78
    for s in senses:
        assert s.mid in onto.labels and onto.labels[s.mid] == s.name
        assert wn.synset(s.synset).pos() == "n"
        assert s.reason


def test_sound_sources_not_first_senses(senses):
    by_name = {s.name: s.synset for s in senses}
    assert by_name["Siren"] == "siren.n.04"  # not the sea nymph
    assert by_name["Thunder"] != "boom.n.01"
    assert by_name["Dog"] == "dog.n.01"


def test_word_is_the_lemma_the_label_uses(senses):
    words = {s.name: s.word for s in senses}
    assert words["Pig"] == "pig"  # synset hog.n.03
    assert words["Trumpet"] == "trumpet"  # synset cornet.n.01


def _write(tmp_path, rows):
    path = tmp_path / "senses.tsv"
    path.write_text("mid\tdisplay_name\tsynset\treason\n" + "".join("\t".join(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("row, message", [
    (("/m/0bt9lr", "Dog", "dog.n.99", "x"), "synset 'dog.n.99' does not exist"),
    (("/m/0bt9lr", "Dog", "nosuchword.n.01", "x"), "does not exist in WordNet"),
    (("/m/0bt9lr", "Dog", "run.v.01", "x"), "must be a noun synset"),
    (("/m/0bt9lr", "Doggo", "dog.n.01", "x"), "does not match the label index"),
    (("/m/zzz", "Dog", "dog.n.01", "x"), "not one of the 527 AudioSet labels"),
    (("/m/0bt9lr", "Dog", "dog.n.01"), "expected 4 non-empty"),
])
def test_bad_rows_name_file_and_line(tmp_path, onto, row, message):
    path = _write(tmp_path, [("/m/01yrx", "Cat", "cat.n.01", "ok"), row])
    with pytest.raises(ShardkitError, match=message) as e:
        load_senses(onto, path)
    assert str(e.value).startswith(f"{path}:3:")


def test_duplicate_synset(tmp_path, onto):
    path = _write(tmp_path, [("/m/01yrx", "Cat", "cat.n.01", "a"), ("/m/0bt9lr", "Dog", "cat.n.01", "b")])
    with pytest.raises(ShardkitError, match=r":3: 'cat.n.01' already used on line 2"):
        load_senses(onto, path)


def test_shipped_file_is_the_default():
    assert SENSES_PATH.name == "senses.tsv" and SENSES_PATH.exists()
