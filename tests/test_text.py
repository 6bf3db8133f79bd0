from rag.text import canonical_number, names, numbers, split_sentences, terms


def _sentences(text):
    return [text[s:e] for s, e in split_sentences(text)]


def test_sentences_respect_abbreviations_and_decimals():
    text = "Talent goes to the U.S. and Canada. Japan recorded +0.54 in 2023. Dr. Kim agreed."
    assert _sentences(text) == ["Talent goes to the U.S. and Canada.", "Japan recorded +0.54 in 2023.",
                                "Dr. Kim agreed."]


def test_sentences_never_cross_lines_and_handle_quotes():
    text = "◇ 3.6 overseas for every 100,000 AI talents\n“It is hard.” He added, “We need more.”\n\n"
    assert _sentences(text) == ["◇ 3.6 overseas for every 100,000 AI talents", "“It is hard.”",
                                "He added, “We need more.”"]


def test_sentence_offsets_are_exact_with_offset_and_unicode():
    text = "  기사 이미지.  Korea fell.\r\nNext line?"
    for start, end in split_sentences(text, offset=10):
        assert text[start - 10:end - 10].strip() == text[start - 10:end - 10]
    assert _sentences("") == []


def test_numbers_are_canonical():
    assert canonical_number("+0.30") == "0.3"
    assert canonical_number("100,000") == "100000"
    assert canonical_number("3rd") == "3"
    assert canonical_number("3.0") == "3"
    assert numbers("-0.30 per 10,000 in 2023 and 81.9%") == {"-0.3", "10000", "2023", "81.9%"}
    assert numbers("ranked 3rd, 17 percent, 3.0 and 1.5.") == {"3rd", "17%", "3", "1.5"}


def test_terms_match_names_numbers_and_words():
    assert "sakana" in terms("SakanaAI was founded")
    assert terms("third") == ["3"]
    assert terms("Japan's") == ["japan"]
    assert "the" not in terms("the capital of France")


def test_spellings_of_one_country_are_one_term():
    assert terms("the U.S. and the United States") == ["america", "america"]
    assert terms("the European Union") == terms("the EU") == ["eu"]
    assert names("The U.K. government") == names("The United Kingdom government") == {"britain"}


def test_a_dotted_abbreviation_is_its_letters():
    # "PhD" in a claim is the passage's "Ph.D."; the U.S. stays a country.
    assert set(terms("PhD holders")) == set(terms("Ph.D. holders"))
    assert "america" in terms("the U.S. economy") and "un" in terms("the U.N. said")



def test_acronyms_are_read_through_a_possessive_and_name_aliases():
    from rag.text import acronyms

    assert acronyms("The OECD's AI survey, says Mr Kim") == {"oecd", "ai"}
    assert "us" not in acronyms("in the US") and acronyms("the UN") == {"un"}
