import dataclasses

import pytest

from rag.chunk import chunk_article
from rag.cite import check_answer, parse_claims
from rag.ingest import load_corpus
from rag.prompts import REFUSAL_TEXT
from rag.text import terms
from rag.types import Passage

from .conftest import SEEDS

ARTICLES = {a.doc_id: a for a in load_corpus(SEEDS, 2_000_000)[0]}
JAPAN = "004_8845b63d3c664428"


def _passages(*needles: str) -> list[Passage]:
    """Passages for the chunks containing each needle, in the order given."""
    out = []
    for needle in needles:
        chunk = next(c for a in ARTICLES.values() for c in chunk_article(a, 450, 120) if needle in c.text)
        out.append(Passage(chunk, ARTICLES[chunk.doc_id].title, 0.1, len(out) + 1, 0.5, 1.0))
    return out


def _assert_quotes_exact(answer):
    for c in answer.citations:
        assert ARTICLES[c.doc_id].text[c.start:c.end] == c.quote


def test_parse_claims_moves_trailing_markers_and_reads_groups():
    claims = parse_claims("Korea fell to -0.30 [1, 2]. Japan rose. [3] [Passage 4] Done [9]")
    assert [c.markers for c in claims] == [(1, 2), (3, 4), (9,)]
    assert claims[1].text == "Japan rose."


def test_supported_answer_cites_the_exact_sentence():
    passages = _passages("Korea had a net outflow", "Until 2020-2021")
    answer = check_answer("q", "Japan recorded a net inflow of +0.54 in 2023 [1].", passages)
    assert not answer.refused
    assert answer.text == "Japan recorded a net inflow of +0.54 in 2023 [1]."
    (citation,) = answer.citations
    assert citation.doc_id == JAPAN and "+0.54" in citation.quote and "2023" in citation.quote
    _assert_quotes_exact(answer)
    # The quote is whole sentences: it starts and ends on sentence boundaries.
    spans = passages[0].chunk.sentences
    assert citation.start in [s for s, _ in spans] and citation.end in [e for _, e in spans]


def test_quote_is_the_one_sentence_when_one_suffices():
    passages = _passages("Korea had a net outflow")
    answer = check_answer("q", "Japan recorded a net inflow of +0.54 [1].", passages)
    assert answer.citations[0].quote == ("In the same period, Japan recorded a net inflow of +0.54, amounting to "
                                         "approximately 5.4 individuals for every 100,000.")


def test_wrong_marker_is_moved_to_the_passage_that_backs_the_sentence():
    passages = _passages("In February, the EU allocated", "Korea had a net outflow")
    answer = check_answer("q", "Japan recorded a net inflow of +0.54 [1].", passages)
    assert [c.doc_id for c in answer.citations] == [JAPAN] and answer.draft.endswith("[1].")


def test_marker_to_no_passage_is_dropped_and_citation_found():
    passages = _passages("Korea had a net outflow")
    answer = check_answer("q", "Japan recorded +0.54 [7].", passages)
    assert not answer.refused and [c.marker for c in answer.citations] == [1]
    assert any("no passage" in n for n in answer.notes)


def test_citation_to_unrelated_passage_does_not_stay():
    passages = _passages("Korea had a net outflow", "In February, the EU allocated")
    answer = check_answer("q", "The EU allocated approximately $585 million [1][2].", passages)
    assert [c.doc_id for c in answer.citations] == ["001_b001572057e29601"]
    assert "585" in answer.citations[0].quote


def test_world_knowledge_with_a_bogus_marker_is_refused():
    passages = _passages("France plans to invest")
    answer = check_answer("What is the capital of France?", "The capital of France is Paris [1].", passages)
    assert answer.refused and answer.text == REFUSAL_TEXT and answer.citations == ()


def test_invented_figure_is_dropped():
    passages = _passages("Korea had a net outflow")
    answer = check_answer("q", "Japan recorded a net inflow of +0.75 in 2023 [1].", passages)
    assert answer.refused


def test_wrong_sign_is_a_wrong_figure_but_a_missing_sign_is_not():
    passages = _passages("Korea had a net outflow")
    assert check_answer("q", "Japan's net inflow was -0.54 [1].", passages).refused
    assert not check_answer("q", "Korea's net outflow was 0.30 per 10,000 people [1].", passages).refused


def test_a_name_missing_from_the_passage_sinks_the_sentence():
    passages = _passages("The Japanese government has made")
    japan = "The Japanese government made the cultivation of AI talents a central agenda [1]."
    assert not check_answer("q", japan, passages).refused
    korea = "The Korean government made the cultivation of AI talents a central agenda [1]."
    answer = check_answer("q", korea, passages)
    assert answer.refused and "korea" in answer.notes[-1]


def test_percent_and_ordinal_are_not_plain_counts():
    passages = _passages("For AI companies xAI", "This figure worsened from 0.4")
    assert check_answer("q", "Anthropic has 17 employees [1].", passages).refused
    assert not check_answer("q", "Anthropic stands at 17% [1].", passages).refused
    assert check_answer("q", "Korea ranked 3rd among OECD countries [2].", passages).refused


def test_the_questions_country_may_go_unnamed_unless_the_quote_names_another():
    grads = _passages("about 40% of AI master")
    question = "What share of AI graduates left Korea as of 2022?"
    answer = check_answer(question, "About 40% of AI graduates left Korea as of 2022 [1].", grads)
    assert not answer.refused and "40%" in answer.citations[0].quote
    japan = _passages("The Japanese government has made")
    question = "What did the Korean government make a central agenda?"
    draft = "The Korean government made the cultivation of AI talents a central agenda [1]."
    assert check_answer(question, draft, japan).refused


def test_sentence_moves_to_the_one_passage_that_backs_it():
    passages = _passages("In February, the EU allocated", "OpenAI, a leader in generative AI")
    draft = "OpenAI opened its first office in Asia in Tokyo, Japan [1]."
    answer = check_answer("Where did OpenAI open its first office in Asia?", draft, passages)
    assert not answer.refused and "Tokyo" in answer.citations[0].quote


def test_model_refusal_is_a_refusal():
    passages = _passages("Korea had a net outflow")
    assert check_answer("q", "The articles do not say.", passages).refused


def test_unsupported_sentence_is_removed_and_markers_renumbered():
    passages = _passages("In February, the EU allocated", "Korea had a net outflow")
    draft = "Japan recorded +0.54 [2]. Brazil is the fastest growing market [1]."
    answer = check_answer("q", draft, passages)
    assert answer.text == "Japan recorded +0.54 [1]."
    assert [c.marker for c in answer.citations] == [1] and answer.citations[0].doc_id == JAPAN


def test_quote_grows_to_the_neighbour_sentence_holding_a_figure():
    passages = _passages("Korea had a net outflow")
    answer = check_answer("q", "Korea's net outflow was -0.30 per 10,000 people while Japan had +0.54 [1].",
                          passages)
    quote = answer.citations[0].quote
    assert "-0.30" in quote and "+0.54" in quote
    _assert_quotes_exact(answer)


@pytest.mark.parametrize("draft", ["", "   ", "[1]", "Yes."])
def test_empty_or_contentless_drafts_are_refused(draft):
    assert check_answer("q", draft, _passages("Korea had a net outflow")).refused


def test_a_figure_given_to_the_wrong_country_is_dropped():
    passages = _passages("This indicator, which was 0.30 in 2020")
    answer = check_answer("What was Israel's AI talent migration figure in 2020?",
                          "Israel's AI talent migration figure in 2020 was +0.3 [1].", passages)
    assert answer.refused and "israel with" in " ".join(answer.notes)
    right = check_answer("What was Israel's figure?", "Israel's figure was -0.57 [1].", passages)
    assert not right.refused


def test_a_figure_in_the_sentence_after_the_country_is_bound_to_it():
    passages = _passages("Korea had a net outflow")
    answer = check_answer("How many people per 100,000 left Korea?",
                          "About 3 people per 100,000 left Korea [1].", passages)
    assert not answer.refused, answer.notes


def test_an_answer_about_another_year_than_asked_is_refused():
    passages = _passages("Korea had a net outflow")
    answer = check_answer("What net AI talent inflow did Japan record in 2021?",
                          "Japan recorded a net inflow of +0.54 [1].", passages)
    assert answer.refused and "2021" in answer.notes[-1]
    # A year inside a name is not a year asked about.
    named = check_answer("What did the 2024 report say of Japan?", "Japan recorded a net inflow of +0.54 [1].",
                         passages)
    assert not named.refused


def test_only_a_country_from_the_question_may_go_unnamed():
    passages = _passages("For AI companies xAI")
    answer = check_answer("Who is the CEO of OpenAI?", "The CEO of OpenAI is Elon Musk [1].", passages)
    assert answer.refused


def test_quote_carries_the_claims_names_and_enough_of_its_terms():
    passages = _passages("budget of 18 billion won")
    answer = check_answer("q", "The budget of the Generative AI Leading Talent Cultivation Project is 18 billion won [1].",
                          passages)
    assert "Generative AI Leading Talent" in answer.citations[0].quote and "18 billion" in answer.citations[0].quote


def test_marker_after_a_closing_quote_adds_no_stray_full_stop():
    passages = _passages("To enhance competitiveness in the AI era")
    draft = ("Yoon Bo-sung said, “To enhance competitiveness in the AI era, it is essential to train a large number "
             "of domestic talents and prevent their outflow.” [1]")
    answer = check_answer("q", draft, passages)
    assert answer.text.endswith("outflow.” [1]") and len(parse_claims(answer.text)) == 1


def test_a_word_in_most_passages_is_not_a_name_to_match():
    passages = _passages("Korea was ranked 6th with $3.1 billion", "Korea had a net outflow", "In February, the EU")
    answer = check_answer("q", "Korea dropped 3 places in the private AI investment ranking [1].", passages)
    assert not answer.refused, answer.notes


def test_a_name_from_the_question_may_go_unnamed_when_its_article_gives_it():
    passages = _passages("This survey analyzed the inflow and outflow", "Korea had a net outflow")
    answer = check_answer("Which organization carried out the LinkedIn survey the OECD published?",
                          "The Global Partnership on Artificial Intelligence (GPAI) carried out the LinkedIn-based "
                          "survey that the OECD published [1].", passages)
    assert not answer.refused, answer.notes


def test_the_questions_own_figures_do_not_bind_a_country_to_an_answer():
    passages = _passages("Korea had a net outflow")
    answer = check_answer("What was Korea's net AI talent inflow per 10,000 people in 2023?",
                          "Korea's net AI talent inflow per 10,000 people in 2023 was +0.54 [1].", passages)
    assert answer.refused


def test_an_answer_that_only_restates_the_question_is_not_backed():
    # Accepting the question's words as backed (when the article uses them)
    # let "LG AI Research Institute is tied to Korea's AI talent policy in
    # passage." through on the dev split; the passage must carry the claim.
    passages = _passages("nominated Bae Gyeong-hun, head of LG AI Research Institute")
    question = "How is LG AI Research Institute tied to Korea's AI talent policy in the articles?"
    article = {passages[0].chunk.doc_id: set(terms(question))}
    answer = check_answer(question, "LG AI Research Institute is tied to Korea's AI talent policy in passage [1].",
                          passages, article)
    assert answer.refused


def test_a_judgement_the_passage_does_not_make_is_dropped():
    passages = _passages("Japan recorded a net inflow of +0.54")
    answer = check_answer("Which country is doing best at drawing AI talent?",
                          "Japan is doing best, with a net inflow of +0.54 [1].", passages)
    assert answer.refused and "best" in answer.notes[0]


def test_a_name_common_to_the_passages_but_not_the_corpus_must_still_be_backed():
    passages = _passages("Korea had a net outflow", "Japan recorded a net inflow of +0.54",
                         "As a result of HAI", "This indicator, which was 0.30 in 2020")
    draft = "The OECD and HAI report Korea's figure of -0.30 per 10,000 people [1]."
    question = "Which organizations are credited with Korea's -0.30 figure?"
    # "hai" is in half the passages, but it is a name, not the corpus's subject.
    assert check_answer(question, draft, passages, corpus_common={"ai", "talent"}).refused
    right = "The OECD reports Korea's figure of -0.30 per 10,000 people [1]."
    assert not check_answer(question, right, passages, corpus_common={"ai", "talent"}).refused


def test_a_figure_given_to_the_wrong_year_is_dropped():
    passages = _passages("Korea ranked ninth with $1.39 billion")
    question = "How much private AI investment did Korea have?"
    swapped = check_answer(question, "Korea had $1.39 billion in private AI investment in 2022 [1].", passages)
    assert swapped.refused and "2022 with 1.39" in swapped.notes[0]
    right = check_answer(question, "Korea had $3.1 billion in private AI investment in 2022 [1].", passages)
    assert not right.refused, right.notes
    # A year holds for the sentences after it: "In the same period, Japan recorded ... +0.54".
    japan = check_answer("What was Japan's net inflow?", "Japan recorded a net inflow of +0.54 in 2023 [1].",
                         _passages("Japan recorded a net inflow of +0.54"))
    assert not japan.refused, japan.notes


def test_a_figure_the_question_gives_as_a_name_may_come_from_elsewhere_in_the_article():
    passages = _passages("Korea ranked ninth with $1.39 billion")
    question = "How much private AI investment did Korea record in the AI Index 2024?"
    draft = "Korea recorded $1.39 billion in private AI investment in the AI Index 2024 [1]."
    # The passage never says "2024"; the article's opening paragraph does.
    assert check_answer(question, draft, passages).refused
    article = {passages[0].chunk.doc_id: {"2024", "index"}}
    answer = check_answer(question, draft, passages, article)
    assert not answer.refused, answer.notes
    # A year the question asks about ("in 2022") must still be in the cited text.
    asked = check_answer("How much did Korea invest in 2021?", "Korea invested $1.39 billion in 2021 [1].",
                         passages, {passages[0].chunk.doc_id: {"2021"}})
    assert asked.refused


def test_a_sentence_joining_facts_from_two_articles_is_split_and_each_cited():
    passages = _passages("reaching -0.3 in 2023", "about 40% of AI master's and doctoral graduates")
    question = "What share of graduates had gone abroad as of 2022, and what did the migration index reach in 2023?"
    draft = ("40% of AI master's and doctoral graduates had gone abroad as of 2022, "
             "and the migration index of AI developers reached -0.3 in 2023.")
    answer = check_answer(question, draft, passages)
    assert answer.text == ("40% of AI master's and doctoral graduates had gone abroad as of 2022 [1]. "
                           "The migration index of AI developers reached -0.3 in 2023 [2].")
    assert {c.doc_id for c in answer.citations} == {p.chunk.doc_id for p in passages}
    _assert_quotes_exact(answer)
    # A clause no passage backs sinks the whole sentence, not just itself.
    wrong = draft.replace("-0.3", "-0.9")
    assert check_answer(question, wrong, passages).refused


def test_an_ordinal_in_digits_is_backed_by_the_same_ordinal_in_words():
    passages = _passages("the third largest outflow of AI talent")
    question = "Where did Korea rank in AI talent outflow?"
    answer = check_answer(question, "Korea had the 3rd largest outflow of AI talent [1].", passages)
    assert not answer.refused, answer.notes
    assert check_answer(question, "Korea had the 4th largest outflow of AI talent [1].", passages).refused


def test_the_questions_country_may_go_unnamed_in_a_claim_without_figures_when_its_article_names_it():
    passages = _passages("while A-level talent goes to Naver and Kakao")
    question = "Where does Korea's A-level AI talent end up?"
    draft = "Korea's A-level AI talent ends up at Naver and Kakao [1]."
    article = {passages[0].chunk.doc_id: {"korea"}}
    # The quote names the U.S. and Canada, yet holds no figure a swap could move.
    assert not check_answer(question, draft, passages, article).refused
    # An article that never names the country does not answer for it.
    assert check_answer(question, draft, passages, {passages[0].chunk.doc_id: set()}).refused


def test_in_a_sentence_naming_several_countries_a_figure_is_the_one_named_before_it():
    passages = _passages("the United States ranked first in private investment last year")
    question = "How much did China invest privately in AI last year?"
    swapped = check_answer(question, "China invested about $67.2 billion in private AI last year [1].", passages)
    assert swapped.refused and "china with 67.2" in swapped.notes[0]
    right = check_answer(question, "China invested $7.76 billion in private AI last year [1].", passages)
    assert not right.refused, right.notes
    # A figure may belong to another country the claim also names.
    france = _passages("France plans to invest over $100 million")
    claim = "France plans to invest over $100 million to attract researchers working in the U.S. [1]."
    assert not check_answer("What does France plan?", claim, france).refused


def test_the_questions_country_may_not_take_a_figure_the_quote_gives_another_country_the_claim_names():
    passages = _passages("3.6 AI talents per 100,000 individuals left Korea")
    question = "What figure did the United States record on HAI's AI talent migration indicator?"
    swapped = check_answer(question, "The United States recorded 3.6 AI talents per 100,000 individuals "
                                     "leaving Korea [1].", passages)
    assert swapped.refused, swapped.text
    # Unnamed in a quote that gives the figure to no country, it still may.
    graduates = _passages("doctoral graduates left for overseas as of 2022")
    asked = "What share of Korea's AI graduates had gone abroad as of 2022?"
    claim = check_answer(asked, "About 40% of Korea's AI master's and doctoral graduates left for overseas [1].",
                         graduates, {graduates[0].chunk.doc_id: {"korea"}})
    assert not claim.refused, claim.notes


def test_an_answer_about_another_country_than_the_one_asked_is_refused():
    passages = _passages("South Korea had a net outflow of AI talent of -0.30")
    answer = "South Korea had a net outflow of AI talent of -0.30 per 10,000 people in 2023 [1]."
    wrong = check_answer("What was China's net AI talent outflow per 10,000 people in 2023?", answer,
                         passages)
    assert wrong.refused and "the question about china" in wrong.notes[-1]
    # A question asking which country expects another one.
    japan = _passages("Japan recorded a net inflow of +0.54")
    which = check_answer("Which country had a net inflow while Korea lost talent in 2023?",
                         "Japan recorded a net inflow of +0.54 in 2023 [1].", japan)
    assert not which.refused, which.notes


def test_the_prompts_own_example_is_no_answer_even_where_a_passage_backs_it():
    from rag.prompts import EXAMPLE_SENTENCE

    passages = _passages("Japan recorded a net inflow of +0.54")
    answer = check_answer("How much did Japan invest privately in AI in 2023?", f"{EXAMPLE_SENTENCE} [1].", passages)
    assert answer.refused and "example" in answer.notes[0]


def test_a_question_asking_which_country_needs_a_country_beyond_its_own():
    passages = _passages("the United States ranked first in private investment last year")
    question = "Which country was second to the US in private AI investment in the AI Index 2024?"
    same = check_answer(question, "The United States was second to the US in private AI investment [1].", passages)
    assert same.refused and "which country" in same.notes[-1]
    right = check_answer(question, "China was second, with $7.76 billion [1].", passages)
    assert not right.refused, right.notes


def test_a_question_asking_for_an_amount_needs_one_beyond_its_own():
    passages = _passages("support corporations in purchasing GPUs")
    question = "How much money does Japan give corporations that buy GPUs?"
    vague = check_answer(question, "Japan supports corporations in purchasing GPUs in the form of subsidies [1].",
                         passages)
    assert vague.refused and "amount" in vague.notes[-1]
    passages = _passages("81.9% of the 2,354 corporations")
    question = "What share of the 2,354 Korean firms doing AI business lack AI talent?"
    restated = check_answer(question, "The 2,354 corporations operating AI businesses in Korea reported a shortage "
                                      "of AI talent [1].", passages)
    assert restated.refused and "amount" in restated.notes[-1]  # 2,354 is the question's own figure
    right = check_answer(question, "81.9% of the 2,354 corporations reported a shortage of AI talent [1].", passages)
    assert not right.refused, right.notes
    passages = _passages("effectively doubling the number of foreigners")
    in_words = check_answer("How much did 'business manager' permits change the number of foreigners who can start "
                            "businesses in Japan?", "The permits effectively doubled the number of foreigners who "
                            "can start businesses in Japan [1].", passages)
    assert not any("amount" in note for note in in_words.notes), in_words.notes


def test_a_figure_given_for_last_year_does_not_answer_for_another_year_the_question_asks():
    # One passage of both chunks, as retrieval joins a chunk and its continuation.
    first, then = (p.chunk for p in _passages("Korea recorded -0.30 last year", "This indicator, which was 0.30"))
    article = ARTICLES[first.doc_id]
    joined = dataclasses.replace(first, chunk_id=f"{first.chunk_id}+{then.chunk_id}", end=then.end,
                                 text=article.text[first.start:then.end], sentences=first.sentences + then.sentences)
    passages = [Passage(joined, article.title, 0.1, 1, 0.5, 1.0)]
    question = "What value did Korea's AI talent movement indicator have in 2020, before it started to fall?"
    wrong = check_answer(question, "Korea's AI talent movement indicator was -0.30 last year [1].", passages)
    assert wrong.refused, wrong.text
    right = check_answer(question, "The indicator was 0.30 in 2020 [1].", passages)
    assert not right.refused, right.notes
    # Where "last year" is the year asked, the passage gives the figure with it.
    asked_2023 = "What did Korea record in HAI's 2019-2023 survey of LinkedIn members in 2023?"
    same_year = check_answer(asked_2023, "Korea recorded -0.30 last year [1].", passages)
    assert not same_year.refused, same_year.notes


def test_an_answer_that_adds_nothing_to_the_question_is_refused():
    # Seen on the old test split (dev since 2026-12-01): the passage shares the question's words, so
    # each was backed, yet the answer names no proposal at all.
    passages = _passages("provide 'value for effort' to AI talents")
    question = "Among Professor Kim's proposals to give AI talent 'value for effort', which one concerns conscription?"
    restated = check_answer(question, "Professor Kim's proposal to give AI talent 'value for effort' concerns "
                                      "conscription [1].", passages)
    assert restated.refused and "restates" in restated.notes[-1]
    right = check_answer(question, "Professor Kim suggested military service benefits for AI talents [1].",
                         passages)
    assert not right.refused, right.notes
    # A question offering its answers is answered in its own words.
    choice = "Did Professor Kim suggest policy alternatives or not?"
    assert not check_answer(choice, "Professor Kim suggested policy alternatives [1].", passages).refused




def test_a_refusal_for_a_year_no_passage_names_says_which_years_they_cover():
    passages = _passages("which was 0.30 in 2020")
    covered = {y for y in ("2019", "2020", "2021", "2022", "2023") if y in passages[0].chunk.text}
    answer = check_answer("What was the indicator's value in 2015?", "The indicator was 0.30 in 2015 [1].", passages)
    assert answer.refused and answer.text.startswith(REFUSAL_TEXT)
    assert answer.text.endswith(f"not 2015.") and all(year in answer.text for year in covered)
    # A year the passages do name gets the plain refusal.
    plain = check_answer("What was the indicator's value in 2020?", "It was sunny [1].", passages)
    assert plain.refused and plain.text == REFUSAL_TEXT


def test_a_year_that_only_bounds_a_period_does_not_date_the_claim():
    from rag.cite import _dates

    assert _dates("The museum reopened in 2019 after repairs.", "2019")
    assert not _dates("It was the first prize for the museum since 2019.", "2019")
    assert not _dates("Nobody had won before 2019, or after 2019.", "2019")
    assert _dates("Not since 2019 ... The 2019 prize went to the museum.", "2019")


def _text_passage(text: str) -> list[Passage]:
    from rag.text import split_sentences
    from rag.types import Chunk

    chunk = Chunk("d#1", "d", text, 0, len(text), tuple(split_sentences(text)))
    return [Passage(chunk=chunk, title="t", score=1.0, rank=1, dense_score=0.5, lexical_score=1.0)]


def test_the_questions_name_must_go_with_the_answer_not_only_beside_it():
    passages = _text_passage("The Riverside Museum won the design prize for its new wing. "
                             "Anna Berg and Tom Lund won the prizes for painting.")
    question = "Who designed the Riverside Museum's new wing?"
    beside = check_answer(question, "Anna Berg designed the Riverside Museum's new wing [1].", passages)
    assert beside.refused and "riversid apart from the answer" in beside.notes[-1]
    # A sentence that points back, or names nothing new, still speaks of the name.
    for follow in ("It was designed by Anna Berg.", "The wing was designed by Anna Berg."):
        passages = _text_passage(f"The Riverside Museum opened a new wing in May. {follow}")
        assert not check_answer(question, "Anna Berg designed the Riverside Museum's new wing [1].",
                                passages).refused, follow


def test_a_figure_in_the_questions_name_must_go_with_the_answer_too():
    passages = _text_passage("Cup 2010 winner - Spain. Open 2012 top scorer - Lena Ruiz. Cup 2014 winner - Peru.")
    question = "Who was the runner-up of the 2010 Cup?"
    assert check_answer(question, "Peru was the runner-up of the 2010 Cup [1].", passages).refused
    assert not check_answer("Who won the 2010 Cup?", "Spain won the 2010 Cup [1].", passages).refused
    # A sentence pointing back joins the one before it, whichever holds the answer.
    ranked = _text_passage("Last year 3.6 in 100,000 engineers left Ostland. This ranks Ostland 35th of 38 states.")
    question = "How many engineers per 100,000 left Ostland, the figure that ranks it 35th of 38 states?"
    assert not check_answer(question, "3.6 engineers per 100,000 left Ostland, 35th of 38 states [1].",
                            ranked).refused

