"""gate.search.typos: corrections and completions within one edition's vocabulary."""

from gate.search.typos import Vocabulary, edit_distance, max_edits


def test_typo_tolerance_is_bounded():
    assert max_edits("кас") == 0
    assert max_edits("касса") == 1
    assert max_edits("расконсервация") == 2
    assert edit_distance("касса", "кассы", 1) == 1
    assert edit_distance("пичатает", "печатает", 2) == 1
    assert edit_distance("ксаса", "касса", 2) == 1  # neighbours swapped: one edit
    assert edit_distance("сервер", "кофемашина", 2) > 2


def vocabulary():
    # words -> term ids; df: documents per term (term 3 is in no document: never proposed)
    words = {"касса": 0, "кассы": 0, "масса": 1, "сервер": 2, "серверная": 3, "консервация": 4}
    return Vocabulary(words, {0: 5, 1: 1, 2: 3, 4: 2})


def test_correction_is_the_nearest_word_the_more_common_first():
    v = vocabulary()
    assert v.correct("кесса") == 0       # касса and масса are 1 and 2 edits away
    assert v.correct("асса") == 0        # both 1 edit away: касса is in more documents
    assert v.correct("кансервация") == 4
    assert v.correct("кофемашина") is None
    assert v.correct("кас") is None      # too short to guess
    assert v.correct("12345") is None


def test_completion_of_the_word_being_typed():
    v = vocabulary()
    assert v.complete("сер") == [2]      # серверная is in no document
    assert v.complete("ка") == []        # too short
    assert v.complete("кас") == [0]


def test_prepare_builds_the_lookup_once():
    v = vocabulary()
    v.prepare()
    lookup = v._deletes
    v.prepare()
    assert lookup and v._deletes is lookup
