"""Start the chat app in this process on a free port, for the app and browser tests."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from rag import config
from rag.app import Assistants, build_app, launch


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(settings: config.Settings, assistants: Assistants | None = None) -> Iterator[str]:
    """Yield the address of a running app over `settings`' project folder,
    refusing uploads over its article size limit as `rag chat` does."""
    demo = build_app(settings, assistants)
    url = launch(demo, "127.0.0.1", free_port(), settings.max_article_bytes)
    try:
        yield url
    finally:
        demo.close()
