"""Chat messages -> draft answer text, streamed, from a local model.

Owns the loaded generator (one per process, loaded lazily on first use), the
torch thread settings and the decoding settings: greedy, bounded, with
prompt-lookup decoding. What the draft means is `cite.py`'s business.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Protocol
from collections.abc import Iterator

from . import models
from .errors import RagError

log = logging.getLogger(__name__)


class DraftGenerator(Protocol):
    """What the pipeline needs from a generator; tests pass a fake."""

    name: str

    def load(self) -> None:
        """Load the model now rather than at the first `stream`."""
        ...

    def stream(self, messages: list[dict[str, str]], stop: threading.Event | None = None) -> Iterator[str]:
        """Yield pieces of the reply to `messages` as they are decoded."""
        ...


class _StopOnEvents:
    """A stopping criterion that ends generation as soon as any event is set."""

    def __init__(self, *events: threading.Event | None) -> None:
        self.events = [e for e in events if e is not None]

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        stop = any(e.is_set() for e in self.events)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool)


class Generator:
    """A Qwen2.5-Coder model run with transformers on the CPU.

    >>> g = Generator("qwen2.5-coder-0.5b", cache_dir)          # cheap
    >>> "".join(g.stream([{"role": "user", "content": "Hi"}]))  # loads, then answers
    """

    def __init__(self, name: str, cache_dir, threads: int = 0, max_new_tokens: int = 160,
                 prompt_lookup_tokens: int = 10, progress: bool = True) -> None:
        self.spec = models.get_spec(name)  # ConfigError for an unknown name, before any loading
        self.name = self.spec.name
        self.cache_dir = cache_dir
        # Cores this process may use (a container may allow fewer than exist).
        self.threads = threads or len(os.sched_getaffinity(0))
        self.max_new_tokens = max_new_tokens
        self.prompt_lookup_tokens = prompt_lookup_tokens
        self.progress = progress
        self._model = None
        self._tokenizer = None
        self._load_lock = threading.Lock()
        # One generation at a time: two at once on two cores would each run at
        # half speed or worse, and the model object is not meant to be shared.
        self._generate_lock = threading.Lock()

    def load(self) -> None:
        """Load the model now (it is otherwise loaded by the first `stream`)."""
        with self._load_lock:
            if self._model is None:
                import torch

                torch.set_num_threads(self.threads)
                started = time.perf_counter()
                self._model, self._tokenizer = models.load_model(self.spec, self.cache_dir, progress=self.progress)
                log.info("loaded %s in %.1f s", self.name, time.perf_counter() - started)

    def stream(self, messages: list[dict[str, str]], stop: threading.Event | None = None) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        self.load()
        with self._generate_lock:
            inputs = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                         return_dict=True)
            streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
            kwargs = dict(
                **inputs,
                streamer=streamer,
                do_sample=False,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self._tokenizer.eos_token_id,
            )
            if self.prompt_lookup_tokens:
                kwargs["prompt_lookup_num_tokens"] = self.prompt_lookup_tokens
            # `abandoned` ends generation when the caller stops reading early.
            abandoned = threading.Event()
            kwargs["stopping_criteria"] = StoppingCriteriaList([_StopOnEvents(stop, abandoned)])
            failure: list[BaseException] = []

            def run() -> None:
                try:
                    with torch.inference_mode():
                        self._model.generate(**kwargs)
                except BaseException as exc:  # re-raised in the caller's thread below
                    failure.append(exc)
                    streamer.end()

            worker = threading.Thread(target=run, name="rag-generate", daemon=True)
            worker.start()
            try:
                yield from streamer
            finally:
                abandoned.set()
                worker.join()
            if failure:
                raise RagError(f"generation with {self.name} failed: {failure[0]}") from failure[0]
