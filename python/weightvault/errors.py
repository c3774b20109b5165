"""Exceptions raised for the library's status codes.

Every failed C call becomes a :class:`WeightvaultError` (or a subclass) whose
``code`` is the library's status code (``WV_CORRUPT`` = 4, ...; extended
codes keep their detail bits, ``primary`` masks them) and whose ``message``
is the library's own message for the failure (the error buffer or
``wv_*_errmsg``), falling back to ``wv_strerror(code)`` when it gave none.

Subclasses let callers catch one kind of failure::

    try:
        weightvault.load("model.safetensors")
    except weightvault.CorruptError as e:
        print("damaged:", e.message)
"""

from . import _lib


class WeightvaultError(Exception):
    """A libweightvault call failed.

    Attributes:
        code: the status code returned by the library (int, may carry
            extended detail bits above bit 8).
        primary: ``code`` without the detail bits (one of the WV_* codes).
        message: the library's message, e.g. "model.safetensors: the tensors
            cover 445188 data bytes but the file has 445088 (truncated)".
    """

    def __init__(self, code, message):
        self.code = code
        self.primary = code & 0xFF
        self.message = message
        super().__init__(f"{message} [{_NAMES.get(self.primary, code)}]")


class NotFoundError(WeightvaultError, LookupError):
    """WV_NOTFOUND: a file, repository, ref, checkpoint or tensor is missing."""


class CorruptError(WeightvaultError):
    """WV_CORRUPT: data is malformed or fails its checksum."""


class FormatError(WeightvaultError):
    """WV_FORMAT: not a known format, or a feature of one that is refused."""


class ExistsError(WeightvaultError):
    """WV_EXISTS: a tensor name, ref or repository already exists."""


class ConflictError(WeightvaultError):
    """WV_CONFLICT: a concurrent writer moved a ref or holds the lock."""


class WeightvaultIOError(WeightvaultError, OSError):
    """WV_IO: the operating system refused a read or write."""

    def __init__(self, code, message):
        WeightvaultError.__init__(self, code, message)


class UsageError(WeightvaultError, ValueError):
    """WV_MISUSE / WV_RANGE: a bad argument (name, shape, option)."""


class AuthError(WeightvaultError, PermissionError):
    """WV_AUTH: access denied, an encrypted repository's key missing or
    wrong ("wrong key"), or a checkpoint's signature refused."""


class UnsupportedError(WeightvaultError):
    """WV_UNSUPPORTED: a feature not built into this library."""


class BusyError(WeightvaultError):
    """WV_BUSY: not done yet, e.g. a multi-writer checkpoint whose parts
    are not all durable (the message names the missing writers)."""


_NAMES = {0: "OK", 1: "ERROR", 2: "NOMEM", 3: "IO", 4: "CORRUPT",
          5: "FORMAT", 6: "NOTFOUND", 7: "EXISTS", 8: "CONFLICT", 9: "AUTH",
          10: "RANGE", 11: "MISUSE", 12: "BACKEND", 13: "UNSUPPORTED",
          14: "BUSY"}

_CLASSES = {_lib.NOTFOUND: NotFoundError, _lib.CORRUPT: CorruptError,
            _lib.FORMAT: FormatError, _lib.EXISTS: ExistsError,
            _lib.CONFLICT: ConflictError, _lib.IO: WeightvaultIOError,
            _lib.MISUSE: UsageError, _lib.RANGE: UsageError,
            _lib.AUTH: AuthError,
            _lib.UNSUPPORTED: UnsupportedError, _lib.BUSY: BusyError}


def error(code, message=None):
    """The exception for status `code`, with the library's `message`."""
    if not message:
        message = _lib.dec(_lib.lib().wv_strerror(code))
    return _CLASSES.get(code & 0xFF, WeightvaultError)(code, message)


def check(code, message=None):
    """Raise error(code, message()) unless code is WV_OK.

    `message` is a callable (or a string) so the library's per-handle message
    is only fetched on failure, before any other call can overwrite it.
    """
    if code != _lib.OK:
        raise error(code, message() if callable(message) else message)
