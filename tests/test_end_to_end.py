"""The real thing: real embedding model, real FAISS index on disk, the real
default generator. Slow (the first run dequantizes the model, minutes)."""

import json
import os
import subprocess
import sys

import pytest

from rag import Assistant, config
from rag.ingest import load_corpus

from .conftest import SEEDS

pytestmark = pytest.mark.slow

ARTICLES = {a.doc_id: a.text for a in load_corpus(SEEDS, 2_000_000)[0]}

# (question, a figure or name the answer must contain, the article it must cite)
FACTS = [
    ("What net AI talent inflow did Japan record in 2023 in the OECD survey?", "0.54", "004_8845b63d3c664428"),
    ("According to Stanford HAI, how many AI talents per 100,000 people left Korea last year?", "3.6",
     "000_9ee447cb686ba3f7"),
    ("How much money did the EU allocate in February to attract foreign AI researchers?", "585",
     "001_b001572057e29601"),
    ("How many AI patents per 100,000 people did Korea have in 2022?", "10.26", "002_f3264cf3099be723"),
    ("How many people did KT plan to recruit in the AI field?", "1,000", "003_29683098325bf1b6"),
    ("Who was nominated as the Minister of Science and ICT candidate?", "Bae Gyeong-hun", "000_9ee447cb686ba3f7"),
]
OUT_OF_CORPUS = ["Who won the 2022 FIFA World Cup?", "What is the capital of France?"]


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    (root / "seeds").symlink_to(SEEDS)
    return Assistant(config.load(root=root, config_file=root / "none.toml"), progress=False)


def _check_citations(answer):
    assert answer.citations, answer
    for c in answer.citations:
        assert ARTICLES[c.doc_id][c.start:c.end] == c.quote
        assert f"[{c.marker}]" in answer.text


@pytest.mark.parametrize("question, fact, doc_id", FACTS, ids=[f[2][:3] + ":" + f[1] for f in FACTS])
def test_answers_carry_the_fact_and_cite_its_article(assistant, question, fact, doc_id):
    answer = assistant.ask(question)
    assert not answer.refused, answer.notes
    assert fact.lower() in answer.text.lower(), answer.text
    _check_citations(answer)
    assert doc_id in {c.doc_id for c in answer.citations}
    assert answer.timings["total"] > 0 and answer.model == "qwen2.5-coder-1.5b"


@pytest.mark.parametrize("question", OUT_OF_CORPUS)
def test_out_of_corpus_questions_are_refused(assistant, question):
    answer = assistant.ask(question)
    assert answer.refused and answer.citations == () and "don't cover" in answer.text


def test_stop_ends_generation_and_abandoned_streams_free_the_model(assistant):
    import threading

    stop = threading.Event()
    items = []
    for item in assistant.stream("Why do Korean AI researchers leave for the U.S.?", stop=stop):
        items.append(item)
        stop.set()  # after the first piece
    answer = items[-1]
    assert "stopped by the user" in answer.notes and len(items) <= 4
    stream = assistant.stream(FACTS[0][0])
    next(stream)
    stream.close()  # a reader that goes away mid-answer
    assert "0.54" in assistant.ask(FACTS[0][0]).text


def test_command_line_answers_with_json(tmp_path):
    env = dict(os.environ, RAG_HOME=str(tmp_path))
    (tmp_path / "seeds").symlink_to(SEEDS)
    question = FACTS[0][0]
    done = subprocess.run([sys.executable, "-m", "rag", "ask", question, "--json"], capture_output=True,
                          text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert "0.54" in answer["text"] and not answer["refused"]
    cited = [c for c in answer["citations"] if c["doc_id"] == "004_8845b63d3c664428"]
    assert cited and all(c["quote"] in ARTICLES[c["doc_id"]] for c in cited)
    assert "building it from 5 articles" in done.stderr  # the missing index was built on first use
