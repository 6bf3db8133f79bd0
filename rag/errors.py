"""The project's exceptions: one base class and a few children by cause.

Library code raises these with a message that names the bad value and the next
step; only the command line and the app turn them into one clean sentence.
"""


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
