"""Chat messages -> draft answer text, streamed, from a local model.

Owns the loaded generator (one per process, loaded lazily on first use), the
torch thread settings and the decoding loop: greedy, bounded, with
prompt-lookup drafts and the key/value cache of the previous prompt reused for
the part the next prompt shares with it. What the draft means is `cite.py`'s
business; what the prompt says is `prompts.py`'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import attention, models
from .errors import RagError
from .types import DraftGenerator

log = logging.getLogger(__name__)


def check_model_name(name: str) -> None:
    """Raise ConfigError unless `name` is a packaged model or a well-formed `openai:<URL>` (see remote.py)."""
    from . import remote

    if remote.is_remote(name):
        remote.parse_spec(name)
    else:
        models.get_spec(name)


def make_generator(settings, progress: bool = True) -> DraftGenerator:
    """The generator `settings.model` names, built cheaply (nothing loads or is contacted yet).

    `openai:<URL>` drafts on a serving engine (remote.RemoteGenerator, with
    the API key from $RAG_GENERATOR_API_KEY if set); any other name is a
    packaged model run in this process.
    """
    from . import remote

    s = settings
    if remote.is_remote(s.model):
        return remote.RemoteGenerator(s.model, max_new_tokens=s.max_new_tokens,
                                      api_key=os.environ.get(remote.API_KEY_ENV) or None)
    return Generator(s.model, s.cache_dir, threads=s.threads, max_new_tokens=s.max_new_tokens,
                     prompt_lookup_tokens=s.prompt_lookup_tokens, progress=progress)


@dataclass(frozen=True)
class GenerationStats:
    """How one `stream` call went; read by `rag bench` and by logs."""

    prompt_tokens: int
    reused_tokens: int  # prompt tokens whose keys/values came from the previous prompt
    new_tokens: int  # tokens decoded, end-of-turn token excluded
    forward_passes: int  # model calls after the prefill; fewer than new_tokens when drafts are accepted
    prefill_s: float  # from the call to the first token's logits
    first_token_s: float  # from the call to the first decoded token (== prefill_s)
    total_s: float  # from the call to the last token

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens after the first, per second of decoding; 0 when there were none."""
        seconds = self.total_s - self.first_token_s
        return (self.new_tokens - 1) / seconds if self.new_tokens > 1 and seconds > 0 else 0.0


def lookup_draft(ids: list[int], max_tokens: int, max_ngram: int = 4, min_ngram: int = 2) -> list[int]:
    """Up to `max_tokens` tokens that followed the last n-gram of `ids` where it occurred before.

    Prompt-lookup decoding: a cited answer copies names and figures from the
    passages, so what followed the same words in the prompt is a good guess of
    what comes next. The longest n-gram (from `max_ngram` down to `min_ngram`)
    with an earlier occurrence wins, the latest occurrence first. A single
    shared token is too weak a clue: its drafts were mostly rejected and cost
    a wider step each (simulated on 109 eval answers: 2-4-grams with 3 draft
    tokens needed 0.66 of the plain decoding time, 1-2-grams 0.71). The guess
    costs no model call, and greedy verification keeps only what the model
    would have written anyway.

    >>> lookup_draft([5, 6, 7, 8, 9, 6, 7], 2)
    [8, 9]
    >>> lookup_draft([5, 6, 7, 8, 9, 7], 2)  # only a 1-gram repeats
    []
    """
    if max_tokens <= 0:
        return []
    n_ids = len(ids)
    for size in range(min(max_ngram, n_ids - 1), min_ngram - 1, -1):
        tail = ids[n_ids - size:]
        for start in range(n_ids - size - 1, -1, -1):
            if ids[start:start + size] == tail:
                follow = ids[start + size:start + size + max_tokens]
                if follow:
                    return follow
    return []


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class _PromptCache:
    """Key/value caches of the last few prompts, to skip the prefill of what the next prompt shares with one.

    Every prompt starts with the same system message and passage header, so
    its keys and values are computed once and reused; a prompt asked again
    (a retry, the app re-asking) reuses its passages too. Keys and values of a
    token depend only on the tokens before it, so the reuse is exact. The
    entries are never changed: a prompt gets a copy of the shared prefix
    (a few MB, milliseconds), so two prompts that alternate — the pipeline's
    second try without the refusal option, then the next question with it —
    each still find their own.
    """

    def __init__(self, max_entries: int = 4, copy_prefix=None) -> None:
        self.max_entries = max_entries
        self._copy_prefix = copy_prefix or _copy_prefix
        self._entries: list[tuple[list[int], Any]] = []  # newest first; each cache holds exactly its ids

    def take(self, ids: list[int]) -> tuple[Any, int]:
        """(a new cache holding the longest prefix of `ids` on hand, its length), or (None, 0)."""
        best, shared = None, 0
        for entry_ids, cache in self._entries:
            common = _common_prefix(entry_ids, ids)
            if common > shared:
                best, shared = cache, common
        # At least one token must go through the model to give the first logits.
        shared = min(shared, len(ids) - 1)
        if best is None or shared <= 0:
            return None, 0
        return self._copy_prefix(best, shared), shared

    def keep(self, ids: list[int], cache: Any) -> None:
        """Keep `cache` for later prompts, cut back to the prompt `ids` (the answer is not reused)."""
        extra = cache.get_seq_length() - len(ids)
        if extra < 0:
            return  # a prefill that did not finish: nothing trustworthy to keep
        if extra:
            cache.crop(-extra)
        others = [(i, c) for i, c in self._entries if i != ids]
        self._entries = [(list(ids), cache)] + others[:self.max_entries - 1]


def _copy_prefix(cache: Any, length: int) -> Any:
    """A new DynamicCache with the first `length` positions of `cache`, copied."""
    from transformers import DynamicCache

    out = DynamicCache()
    for index, layer in enumerate(cache.layers):
        out.update(layer.keys[..., :length, :].clone(), layer.values[..., :length, :].clone(), index)
    return out


class Generator:
    """A Qwen2.5-Coder model run with transformers on the CPU.

    >>> g = Generator("qwen2.5-coder-0.5b", cache_dir)          # cheap
    >>> "".join(g.stream([{"role": "user", "content": "Hi"}]))  # loads, then answers
    """

    def __init__(self, name: str, cache_dir, threads: int = 0, max_new_tokens: int = 160,
                 prompt_lookup_tokens: int = 3, progress: bool = True, reuse_prompt_cache: bool = True,
                 decode_weights: tuple[str, ...] = ("int4", "int8")) -> None:
        self.spec = models.get_spec(name)  # ConfigError for an unknown name, before any loading
        self.name = self.spec.name
        self.cache_dir = cache_dir
        # Cores this process may use (a container may allow fewer than exist).
        self.threads = threads or len(os.sched_getaffinity(0))
        self.max_new_tokens = max_new_tokens
        self.prompt_lookup_tokens = prompt_lookup_tokens
        self.progress = progress
        self.reuse_prompt_cache = reuse_prompt_cache
        # Which packed forms of the weights decode with (see quantize.py); () keeps bfloat16 throughout.
        self.decode_weights = decode_weights
        self.last_stats: GenerationStats | None = None  # of the latest finished or stopped stream
        self._model = None
        self._tokenizer = None
        self._end_ids: frozenset[int] = frozenset()
        self._prompt_cache = _PromptCache()
        self._load_lock = threading.Lock()
        # One generation at a time: two at once on two cores would each run at
        # half speed or worse, and the model and prompt caches are not meant to be shared.
        self._generate_lock = threading.Lock()

    def load(self) -> None:
        """Load the model now (it is otherwise loaded by the first `stream`)."""
        with self._load_lock:
            if self._model is None:
                import torch

                started = time.perf_counter()
                with _torch_threads(self.threads):
                    model, tokenizer = models.load_model(self.spec, self.cache_dir, progress=self.progress)
                    model.set_attn_implementation(attention.register())
                    if self.decode_weights and model.dtype == torch.bfloat16:
                        from . import quantize

                        packed = models.load_int4_weights(self.spec, self.cache_dir, progress=self.progress)
                        swapped = quantize.attach(model, packed, self.decode_weights)
                        log.info("decoding with %d packed matrices (%s)", swapped, ", ".join(self.decode_weights))
                self._end_ids = _end_token_ids(model, tokenizer)
                self._tokenizer = tokenizer
                self._model = model
                log.info("loaded %s in %.1f s", self.name, time.perf_counter() - started)

    def encode(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt token ids of `messages` in the model's chat template (what `stream` feeds the model)."""
        self.load()
        ids = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                  return_dict=False)
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # some tokenizers return a BatchEncoding anyway
            ids = ids["input_ids"]
        return [int(i) for i in ids]

    def stream(self, messages: list[dict[str, str]], stop: threading.Event | None = None) -> Iterator[str]:
        self.load()
        with self._generate_lock, _torch_threads(self.threads):
            ids = self.encode(messages)
            try:
                yield from self._decode(ids, stop)
            except GeneratorExit:
                raise
            except Exception as exc:
                raise RagError(f"generation with {self.name} failed: {exc}") from exc

    def _decode(self, ids: list[int], stop: threading.Event | None) -> Iterator[str]:
        """Greedy decoding of the reply to prompt `ids`, yielding text as soon as it is whole.

        Each step feeds the last token plus a prompt-lookup draft and keeps the
        draft tokens the model agrees with, so the text is what plain greedy
        decoding writes, in fewer model calls.
        """
        import torch
        from transformers import DynamicCache

        started = time.perf_counter()
        model = self._model
        cache, reused = self._prompt_cache.take(ids) if self.reuse_prompt_cache else (None, 0)
        if cache is None:
            cache = DynamicCache(config=model.config)
        text = _IncrementalText(self._tokenizer)
        generated: list[int] = []
        passes = 0
        first_token_s = prefill_s = 0.0
        consistent = False  # the cache holds whole steps only between model calls
        try:
            with torch.inference_mode():
                logits = model(input_ids=torch.tensor([ids[reused:]]), past_key_values=cache, use_cache=True,
                               logits_to_keep=1).logits
                consistent = True
                token = int(logits[0, -1].argmax())
                prefill_s = first_token_s = time.perf_counter() - started
                pending = [token]  # decided tokens not yet shown
                while True:
                    done = False
                    for t in pending:
                        if t in self._end_ids:
                            done = True
                            break
                        generated.append(t)
                        if len(generated) >= self.max_new_tokens:
                            done = True
                            break
                    piece = text.add(generated)
                    if piece:
                        yield piece
                    if done or (stop is not None and stop.is_set()):
                        break
                    token = generated[-1]
                    budget = self.max_new_tokens - len(generated) - 1
                    draft = lookup_draft(ids + generated, min(self.prompt_lookup_tokens, budget))
                    step = [token] + draft
                    consistent = False
                    logits = model(input_ids=torch.tensor([step]), past_key_values=cache, use_cache=True,
                                   logits_to_keep=len(step)).logits
                    passes += 1
                    predicted = logits[0].argmax(dim=-1).tolist()  # predicted[i] follows step[i]
                    accepted = 0
                    while accepted < len(draft) and draft[accepted] == predicted[accepted]:
                        accepted += 1
                    if accepted < len(draft):
                        cache.crop(accepted - len(draft))  # forget the rejected draft tokens
                    consistent = True
                    pending = draft[:accepted] + [predicted[accepted]]
            tail = text.flush(generated)
            if tail:
                yield tail
        finally:
            total_s = time.perf_counter() - started
            self.last_stats = GenerationStats(prompt_tokens=len(ids), reused_tokens=reused,
                                              new_tokens=len(generated), forward_passes=passes,
                                              prefill_s=prefill_s, first_token_s=first_token_s, total_s=total_s)
            if self.reuse_prompt_cache and consistent:
                self._prompt_cache.keep(ids, cache)
            log.info("generated %d tokens in %.2f s (prompt %d, reused %d, first token %.2f s, %d passes)",
                     len(generated), total_s, len(ids), reused, first_token_s, passes)


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run torch on `threads` threads in this thread, then put back what was there.

    torch and faiss share one OpenMP runtime and its per-thread thread count:
    the retriever's `faiss.omp_set_num_threads(1)` (right for single queries)
    would leave the model on one core, and a model that set two for good would
    leave faiss searching with two (40x slower here). Setting it per call
    keeps each right.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _IncrementalText:
    """Turns a growing list of token ids into new text pieces, holding back half a character.

    Decoding the whole list each time (it is at most a few hundred tokens) is
    what keeps multi-token characters and leading spaces right.
    """

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.shown = 0  # characters of the decoded text already yielded

    def add(self, ids: list[int]) -> str:
        full = self.tokenizer.decode(ids, skip_special_tokens=True)
        if full.endswith("\ufffd"):
            return ""  # the last token ends inside a UTF-8 character; wait for the rest
        return self._take(full)

    def flush(self, ids: list[int]) -> str:
        return self._take(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _take(self, full: str) -> str:
        piece = full[self.shown:]
        self.shown = max(self.shown, len(full))
        return piece


def _end_token_ids(model, tokenizer) -> frozenset[int]:
    """Token ids that end the assistant's turn: the generation config's and the chat template's."""
    ids: set[int] = set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    # Qwen's chat template closes every turn with <|im_end|>; a GGUF may name <|endoftext|> as eos instead.
    for special in ("<|im_end|>", "<|endoftext|>"):
        token_id = tokenizer.convert_tokens_to_ids(special)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return frozenset(ids)
