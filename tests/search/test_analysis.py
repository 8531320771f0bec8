"""gate.search.analysis: words to terms, the same for articles and queries."""

from gate.search import analysis


def test_analyzer_is_created_once_and_lemmas_are_cached():
    assert analysis.analyzer() is analysis.analyzer()
    analysis.lemma("цены")
    before = analysis.lemma.cache_info().hits
    assert analysis.lemma("цены") == "цена"
    assert analysis.lemma.cache_info().hits == before + 1


def test_lemmas_fold_yo_keep_latin_and_drop_function_words():
    assert analysis.terms_of("Ещё ёлки, Set10 и SOAP в XML; не грузятся") == [
        "елка", "set10", "soap", "xml", "грузиться"]


def test_hyphenated_words_are_also_one_joined_word():
    assert [w for _, _, w in analysis.tokens("Чек-лист")] == ["чек", "лист", "чеклист"]


def test_spellings_map_a_russian_word_in_any_form_to_its_term():
    spellings = {"центрум": "centrum", "ерп": "erp"}
    assert analysis.terms_of("в Центруме и в ЕРП", spellings) == ["centrum", "erp"]
    assert analysis.terms_of("в Центруме") == ["центрум"]  # without them: the Russian lemma
    assert analysis.term_of("erp", {"erp": "ерп"}) == "erp"  # Latin words are kept as written


def test_stems_join_words_of_one_root_and_only_known_russian_words():
    assert analysis.word_stem("ответить") == analysis.word_stem("ответ") == "~ответ"
    assert analysis.word_stem("soap") is None
    assert analysis.word_stem("центрум", {"центрум": "centrum"}) is None


def test_clean_html_drops_tags_and_unescapes():
    assert analysis.clean_html("<p>A &amp; <b>B</b></p>\n") == "A & B"
