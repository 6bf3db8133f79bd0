"""The eval set is well formed: ids unique, gold quotes really in their
articles, every fact stated in its gold article, enough items of each kind."""

from __future__ import annotations

from collections import Counter

import pytest

from rag.evaluate import alias_pattern, default_eval_dir, item_files, load_items
from rag.ingest import load_corpus

from .conftest import SEEDS

ITEMS = load_items(item_files(default_eval_dir()))
ARTICLES = {a.doc_id: a.text for a in load_corpus(SEEDS, 2_000_000)[0]}


def test_ids_are_unique():
    counts = Counter(i.id for i in ITEMS)
    assert [i for i, n in counts.items() if n > 1] == []


def test_sizes_meet_the_brief():
    kinds = Counter(i.kind for i in ITEMS)
    assert len(ITEMS) >= 100
    assert kinds["fact"] >= 70 and kinds["refuse"] >= 20 and kinds["multi"] >= 10
    per_article = Counter(g.doc for i in ITEMS if i.kind == "fact" for g in i.gold)
    assert set(per_article) == set(ARTICLES) and min(per_article.values()) >= 10
    for kind in kinds:  # both splits have every kind
        assert {i.split for i in ITEMS if i.kind == kind} == {"dev", "test"}


@pytest.mark.parametrize("item", [i for i in ITEMS if i.kind != "refuse"], ids=lambda i: i.id)
def test_gold_quotes_are_in_their_articles_and_state_the_facts(item):
    assert item.gold and item.facts
    for gold in item.gold:
        assert gold.doc in ARTICLES, gold.doc
        assert gold.quote in ARTICLES[gold.doc], gold.quote
    gold_text = " ".join(ARTICLES[g.doc] for g in item.gold)
    for aliases in item.facts:
        assert any(alias_pattern(a).search(gold_text) for a in aliases), aliases
    if item.kind == "multi":
        assert len({g.doc for g in item.gold}) >= 2


@pytest.mark.parametrize("item", [i for i in ITEMS if i.kind == "refuse"], ids=lambda i: i.id)
def test_refusals_have_no_answer_key(item):
    assert not item.facts and not item.gold
