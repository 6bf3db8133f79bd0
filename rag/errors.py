"""The project's exceptions: one base class and a few children by cause.

Library code raises these with a message that names the bad value and the next
step; only the command line and the app turn them into one clean sentence.
"""

import tempfile
from pathlib import Path


class RagError(Exception):
    """Base class for every error the project raises on purpose."""


class BadInput(RagError):
    """The user's own input is unusable: an empty question, a bad article file."""


class ConfigError(RagError):
    """A setting is unknown or has a bad value (an unknown model name, say)."""


class IndexLoadError(RagError):
    """The index on disk is missing a file, corrupt, or built by other settings."""


class IndexWriteError(RagError):
    """The index folder cannot be written (permissions, a file in its place, a full disk)."""


class ModelLoadError(RagError):
    """A model package is missing, or a model file fails its checksum."""


def why_unwritable(folder: Path) -> str | None:
    """Why a build could not write into `folder` (created if missing), in a
    few words for an error message; None when it can. Checked before minutes
    of building (model cache) or embedding (index) would end in a traceback."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # what a build does first: make a file in it
            pass
    except OSError as error:
        return os_reason(error)
    return None


def os_reason(error: Exception) -> str:
    """An OSError (or faiss's RuntimeError for a failed write) in a few words."""
    if isinstance(error, (FileExistsError, NotADirectoryError)):
        return "a file is in its way"
    return getattr(error, "strerror", None) or str(error)[:120] or type(error).__name__
