"""The chat under load: 10 clients send 50 questions in all through
`gradio_client` to the real app with the real models. Every question is
answered (queued, then answered), none is lost, none gets an error, and each
answer is the one the same question gets when asked alone. Prints the figures
the README quotes (answers per minute, latency p50/p95 under load, peak memory)."""

from __future__ import annotations

import resource
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rag import config
from rag.app import GENERIC_ERROR

from .conftest import SEEDS
from .test_app import answer_text, client_ask


def shown(page: str) -> str:
    """The answer's visible text, or the refusal's headline."""
    if '<div class="refusal-head">' in page:
        return "refused: " + page.rsplit('<div class="refusal-head">', 1)[1].split("</div>", 1)[0]
    return answer_text(page)

pytestmark = pytest.mark.slow

CLIENTS = 10
QUESTIONS = [  # dev items and the end-to-end questions, answered and refused alike
    "What net AI talent inflow did Japan record in 2023 in the OECD survey?",
    "How much money did the EU allocate in February to attract foreign AI researchers?",
    "How many AI patents per 100,000 people did Korea have in 2022?",
    "How many people did KT plan to recruit in the AI field?",
    "Who was nominated as the Minister of Science and ICT candidate?",
    "According to Stanford HAI, how many AI talents per 100,000 people left Korea last year?",
    "Through which visa is the Japanese government easing requirements for overseas talent?",
    "What percentage of Meta's AI staff are foreign nationals?",
    "Who won the 2022 FIFA World Cup?",
    "What is the capital of France?",
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from .chat_server import serve

    root = tmp_path_factory.mktemp("project")
    (root / "seeds").symlink_to(SEEDS)
    with serve(config.load(root=root, config_file=root / "none.toml")) as url:
        yield url


def test_ten_clients_and_fifty_questions_all_answered_as_when_asked_alone(app_url, capsys):
    alone = {q: shown(client_ask(app_url, q)) for q in QUESTIONS}
    asked = [QUESTIONS[i % len(QUESTIONS)] for i in range(5 * len(QUESTIONS))]

    def timed(question: str) -> tuple[str, str, float]:
        started = time.perf_counter()
        page = client_ask(app_url, question)
        return question, page, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(timed, asked))
    wall_s = time.perf_counter() - started

    assert len(results) == len(asked)  # none lost
    assert not [q for q, page, _ in results if GENERIC_ERROR in page]  # no error response
    differ = [q for q, page, _ in results if shown(page) != alone[q]]
    # Greedy decoding in bfloat16 may round one draft differently under load;
    # more than that would be answers mixed between clients.
    assert len(differ) <= 2, differ
    latencies = sorted(s for _, _, s in results)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    with capsys.disabled():
        print(f"\nload: {len(results)} questions from {CLIENTS} clients in {wall_s:.0f} s "
              f"({60 * len(results) / wall_s:.1f} answers/min); latency p50 {statistics.median(latencies):.1f} s, "
              f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:.1f} s; {len(differ)} answer(s) differing from "
              f"the one asked alone {differ}; peak memory of this test process (earlier tests included) "
              f"{peak_gb:.1f} GB")
