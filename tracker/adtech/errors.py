"""The error of a notice value that cannot be used, shared by the price parser and its decrypter.

Its own module so that :mod:`tracker.adtech.openrtb` and
:mod:`tracker.adtech.pricecrypto` both import it without importing each other.
"""

from __future__ import annotations


class NoticeError(ValueError):
    """A notice value that cannot be used.

    Attributes:
        reason: Machine label: ``missing_price``, ``unsubstituted_macro``,
            ``bad_price`` or ``price_integrity``.
        message: What is wrong and what to fix, for people.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message
