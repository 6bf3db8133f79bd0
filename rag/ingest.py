"""Files -> Articles: reading, validating and titling article files.

An article is a UTF-8 `.txt` or `.md` file whose stem is its document id.
Titles, publishers, authors and dates come from `metadata.toml` beside the
articles; nothing here guesses a date. Chunking is the next stage's job.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import re
import tomllib
from pathlib import Path

from .errors import BadInput, ConfigError
from .types import Article

log = logging.getLogger(__name__)

ARTICLE_SUFFIXES = (".txt", ".md")
METADATA_FILE = "metadata.toml"
_METADATA_FIELDS = {"title", "publisher", "author", "date"}
_TITLE_MAX_CHARS = 120


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_text(path: Path, max_bytes: int) -> str:
    """Return the text of an article file, or raise BadInput saying what is wrong."""
    path = Path(path)
    if path.suffix.lower() not in ARTICLE_SUFFIXES:
        raise BadInput(f"{path.name}: only .txt and .md articles are accepted")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise BadInput(f"{path.name} is {size:,} bytes; articles are limited to {max_bytes:,} bytes")
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}") from None
    except IsADirectoryError:
        raise BadInput(f"{path} is a folder, not an article file") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and _decodes(data, "utf-16"):
        # Windows editors save "Unicode" as UTF-16, whose NUL bytes would call it binary.
        raise BadInput(f"{path.name} is UTF-16 text — save it as UTF-8")
    if b"\x00" in data:
        raise BadInput(f"{path.name} looks binary (it contains NUL bytes), not a text article")
    try:
        # utf-8-sig drops a byte-order mark, which is not part of the article.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path.name} is not UTF-8 text (bad byte at position {exc.start})") from None
    if not text.strip():
        raise BadInput(f"{path.name} is empty")
    return text


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def upload_name(filename: str | None) -> str:
    """The base name an uploaded article is saved under; BadInput for a name
    that tries to leave the folder or could not be an article's file name
    (hidden, or with control characters). The chat and `rag serve` both use it.

    >>> upload_name("uploads/vostrel.txt")
    'vostrel.txt'
    """
    name = (filename or "").strip()
    if not name:
        raise BadInput("an uploaded file has no name; send each article with its file name")
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise BadInput(f"{name!r} is an absolute path; send the article under its own file name")
    parts = re.split(r"[\\/]", name)
    if ".." in parts:
        raise BadInput(f"{name!r} points outside its folder; send the article under its own file name")
    base = parts[-1]
    if not base or base.startswith(".") or any(ord(ch) < 32 for ch in base):
        raise BadInput(f"{name!r} is not a usable article file name")
    return base


def _first_line_title(text: str) -> str:
    """The first line as a title, or "" when it is the only line: a one-line
    article (a news snippet) has no title, and repeating its text as one
    would show the model every passage twice."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return ""
    line = lines[0]
    line = re.sub(r"^#+\s*", "", line.strip())  # a Markdown heading
    if len(line) > _TITLE_MAX_CHARS:
        line = line[: _TITLE_MAX_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return line


def load_metadata(folder: Path) -> dict[str, dict[str, str]]:
    """Read `metadata.toml` from `folder`: {doc_id: {field: value}}; {} if absent."""
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    for doc_id, fields in data.items():
        unknown = set(fields) - _METADATA_FIELDS if isinstance(fields, dict) else {"(not a table)"}
        if unknown:
            raise ConfigError(f"{path}: entry {doc_id!r} has unknown field(s) {sorted(unknown)}")
    return {doc_id: {k: str(v) for k, v in fields.items()} for doc_id, fields in data.items()}


def read_article(path: Path, max_bytes: int, metadata: dict[str, str] | None = None) -> Article:
    """Read one article file into an Article; raises BadInput for a bad file."""
    path = Path(path)
    text = read_text(path, max_bytes)
    meta = metadata or {}
    return Article(
        doc_id=path.stem,
        title=meta.get("title") or _first_line_title(text) or path.stem,
        text=text,
        content_hash=content_hash(text),
        path=str(path),
        publisher=meta.get("publisher"),
        author=meta.get("author"),
        date=meta.get("date"),
    )


def load_corpus(folder: Path, max_bytes: int) -> tuple[list[Article], list[str]]:
    """Read every article in `folder`, sorted by document id.

    Returns (articles, problems): a bad file is skipped with a one-line problem
    rather than stopping the whole corpus, so one malformed article never
    takes the others out of the index.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"article folder {folder} does not exist")
    metadata = load_metadata(folder)
    articles: dict[str, Article] = {}
    problems: list[str] = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in ARTICLE_SUFFIXES):
        if path.stem in articles:
            problems.append(f"{path.name}: skipped, document id {path.stem!r} is already used by another file")
            continue
        try:
            articles[path.stem] = read_article(path, max_bytes, metadata.get(path.stem))
        except BadInput as exc:
            problems.append(f"{exc} (skipped)")
    for problem in problems:
        log.warning(problem)
    return list(articles.values()), problems
