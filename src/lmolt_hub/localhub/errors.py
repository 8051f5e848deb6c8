"""The one error type of the local Hub: an HTTP status plus the ``X-Error-Code`` clients type errors by."""

from __future__ import annotations


class HubError(Exception):
    """An error with the HTTP status and ``X-Error-Code`` the Hub clients understand."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.extra = extra or {}
