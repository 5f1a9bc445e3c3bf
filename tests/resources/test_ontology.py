def test_counts(onto):
    assert len(onto.classes) == 632
    assert len(onto.labels) == 527
    assert set(onto.labels) <= set(onto.classes)
    assert sorted(onto.label_index.values()) == list(range(527))


def test_parent_child_links_agree(onto):
    for mid, c in onto.classes.items():
        for child in c.children:
            assert mid in onto.classes[child].parents
    assert onto.ancestors("/m/0bt9lr") == {"/m/068hy", "/m/0jbk"}  # Dog < Domestic animals, pets < Animal


def test_restrictions(onto):
    abstract = [m for m, c in onto.classes.items() if "abstract" in c.restrictions]
    blacklist = [m for m, c in onto.classes.items() if "blacklist" in c.restrictions]
    assert (len(abstract), len(blacklist)) == (23, 67)
    assert not set(abstract) & set(onto.labels)  # abstract classes never label a clip
