"""The decoding loop's parts: prompt-lookup drafts, the reused prompt cache,
incremental text, thread counts; and, on the real model, that the fast paths
write exactly what plain bfloat16 greedy decoding writes."""

from __future__ import annotations

import threading

import pytest
import torch

from rag.generate import GenerationStats, _IncrementalText, _PromptCache, _torch_threads, lookup_draft


def test_draft_follows_the_latest_earlier_occurrence_of_the_longest_ngram():
    ids = [1, 2, 3, 9, 1, 2, 3, 7, 8, 1, 2, 3]
    assert lookup_draft(ids, 2) == [7, 8]  # the 3-gram [1, 2, 3] last occurred before [7, 8]
    assert lookup_draft(ids, 1, max_ngram=2) == [7]


def test_no_draft_from_a_single_shared_token_or_a_zero_budget():
    assert lookup_draft([4, 5, 6, 4], 3) == []
    assert lookup_draft([4, 5, 6, 4, 5], 0) == []
    assert lookup_draft([], 3) == [] and lookup_draft([7], 3) == []


def test_draft_is_cut_at_the_end_of_the_ids():
    assert lookup_draft([1, 2, 3, 1, 2], 5) == [3, 1, 2]


class FakeCache:
    """A key/value cache stand-in that only tracks its length."""

    def __init__(self, length: int) -> None:
        self.length = length

    def get_seq_length(self) -> int:
        return self.length

    def crop(self, delta: int) -> None:
        assert delta <= 0
        self.length += delta


def fake_store(max_entries: int = 4) -> _PromptCache:
    return _PromptCache(max_entries, copy_prefix=lambda cache, length: FakeCache(length))


def test_prompt_cache_gives_a_copy_of_the_shared_prefix_and_keeps_one_token_to_compute():
    store = fake_store()
    assert store.take([1, 2, 3]) == (None, 0)
    store.keep([1, 2, 3, 4], FakeCache(4 + 7))  # 7 answer tokens are not kept
    cache, shared = store.take([1, 2, 3, 9, 9])
    assert shared == 3 and cache.get_seq_length() == 3
    cache, shared = store.take([1, 2, 3, 4])  # the same prompt again still prefills its last token
    assert shared == 3 and cache.get_seq_length() == 3
    assert store.take([7, 8]) == (None, 0)


def test_prompt_cache_finds_the_longest_prefix_among_recent_prompts():
    store = fake_store(max_entries=2)
    store.keep([1, 2, 3, 4, 5], FakeCache(5))  # first try
    store.keep([1, 2, 6, 6], FakeCache(4))  # second try, another system message
    assert store.take([1, 2, 3, 4, 9])[1] == 4  # the next question shares more with the first try
    store.keep([7, 7, 7], FakeCache(3))
    assert store.take([1, 2, 3, 4, 9])[1] == 2  # the oldest entry is gone


def test_prompt_cache_ignores_a_prefill_that_did_not_finish():
    store = fake_store()
    store.keep([1, 2, 3], FakeCache(2))
    assert store.take([1, 2, 3]) == (None, 0)


class FakeTokenizer:
    def __init__(self, pieces: dict[int, bytes]) -> None:
        self.pieces = pieces

    def decode(self, ids, skip_special_tokens=True) -> str:
        return b"".join(self.pieces[i] for i in ids).decode("utf-8", errors="replace")


def test_incremental_text_holds_back_half_a_character():
    euro = "€".encode()
    text = _IncrementalText(FakeTokenizer({1: b"Price ", 2: euro[:1], 3: euro[1:], 4: b"5"}))
    assert text.add([1]) == "Price "
    assert text.add([1, 2]) == ""
    assert text.add([1, 2, 3]) == "€"
    assert text.add([1, 2, 3, 4]) == "5"
    assert text.flush([1, 2, 3, 4]) == ""


def test_thread_count_is_put_back_after_use():
    before = torch.get_num_threads()
    with _torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_decode_rate_counts_tokens_after_the_first():
    stats = GenerationStats(prompt_tokens=10, reused_tokens=5, new_tokens=11, forward_passes=6, prefill_s=1.0,
                            first_token_s=1.0, total_s=3.0)
    assert stats.decode_tokens_per_s == 5.0
    assert GenerationStats(10, 0, 1, 0, 1.0, 1.0, 1.0).decode_tokens_per_s == 0.0


@pytest.mark.slow
def test_fast_paths_write_what_plain_bfloat16_greedy_decoding_writes():
    """Prompt cache, drafts, packed decode weights and small-query attention change speed, not text."""
    from rag import config, quantize
    from rag.generate import Generator

    settings = config.load()
    fast = Generator(settings.model, settings.cache_dir, progress=False)
    fast.load()
    model = fast._model
    # The same loaded model, decoded the plain way: no drafts, no reused prefix,
    # bfloat16 weights and SDPA attention throughout.
    plain = Generator(settings.model, settings.cache_dir, progress=False, prompt_lookup_tokens=0,
                      reuse_prompt_cache=False)
    plain._model, plain._tokenizer, plain._end_ids = model, fast._tokenizer, fast._end_ids
    packed = [m for m in model.modules() if isinstance(m, quantize.DualLinear)]
    assert packed, "no packed decode weights were attached"

    def plain_text(messages):
        fast_attention = model.config._attn_implementation
        model.config._attn_implementation = "sdpa"
        for m in packed:
            m.max_rows = 0
        try:
            return "".join(plain.stream(messages))
        finally:
            model.config._attn_implementation = fast_attention
            for m in packed:
                m.max_rows = quantize.MAX_PACKED_ROWS

    # Hand-written rather than prompts.py's, which changes for reasons of its own.
    def messages(question):
        return [{"role": "system", "content": "Answer from the passages in one sentence, citing [n]."},
                {"role": "user", "content": "[1] In the same period, Japan recorded a net inflow of +0.54 per "
                 "10,000 people, while South Korea had a net outflow of -0.30.\n[2] Korea ranked 35th among 38 "
                 "OECD countries, with 3.6 AI talents per 100,000 people leaving last year.\n\n"
                 f"Question: {question}"}]

    for question in ("What net AI talent inflow did Japan record?", "Where did Korea rank among OECD countries?"):
        assert "".join(fast.stream(messages(question))) == plain_text(messages(question))
    assert fast.last_stats.reused_tokens > 50  # the second prompt reused the first one's prefix
    stop = threading.Event()
    stop.set()
    assert len("".join(fast.stream(messages("Who?"), stop=stop))) < 40


@pytest.mark.slow
def test_a_second_generation_waits_for_the_first_on_the_real_model():
    """Two threads asking the real Generator at once are served one after the other."""
    from rag import config
    from rag.generate import Generator

    settings = config.load()
    generator = Generator(settings.model, settings.cache_dir, progress=False)
    messages = [{"role": "user", "content": "Name three colours, one per line."}]
    first_reply = generator.stream(messages)
    first_piece = next(first_reply)  # the first generation holds the model, paused mid-answer
    second: list[str] = []
    waiting = threading.Thread(target=lambda: second.extend(generator.stream(messages)))
    waiting.start()
    waiting.join(timeout=3)
    assert waiting.is_alive() and second == []  # the second waits rather than interleaving
    first_text = first_piece + "".join(first_reply)  # the first finishes and lets go
    waiting.join(timeout=300)
    assert not waiting.is_alive() and "".join(second) == first_text
