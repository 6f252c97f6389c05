"""Redact personal data from texts before a project that opted in stores them in the prediction log.

Plain Python, no Django. Three kinds, replaced by a tag so the log stays readable: e-mail addresses
(``[EMAIL]``), phone numbers (``[PHONE]``: 7 to 15 digits written with a ``+`` or separators, as in
E.164 and common national formats) and long digit runs (``[NUMBER]``: 6 or more digits, such as card,
account or ID numbers). ``\\d`` matches every script's decimal digits (Arabic-Indic, Devanagari, …),
so the rules hold beyond ASCII. ISO dates are left alone: they are not personal data on their own.
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# A run that starts and ends with a digit and may hold spaces, dots, dashes, slashes and parentheses.
NUMBERISH = re.compile(r"(?<![\w@])(\+?\(?\d[\d\s().\-/]*\d\)?)(?![\w@])", re.UNICODE)
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
LONG_DIGITS = re.compile(r"\d{6,}", re.UNICODE)
PHONE_DIGITS = range(7, 16)


def redact(text: str) -> str:
    """Return ``text`` with e-mail addresses, phone numbers and long digit runs replaced by tags."""
    text = EMAIL.sub("[EMAIL]", text)
    text = NUMBERISH.sub(_number, text)
    return LONG_DIGITS.sub("[NUMBER]", text)


def _number(match: re.Match[str]) -> str:
    """Tag one number-like run: a phone number, a long digit run, or leave it (short numbers, dates)."""
    run = match.group(1)
    if ISO_DATE.fullmatch(run.strip()):
        return run
    digits = sum(ch.isdigit() for ch in run)
    formatted = run.startswith("+") or any(ch in run for ch in " ().-/")
    if formatted and digits in PHONE_DIGITS and "\n" not in run:
        return "[PHONE]"
    if digits >= 6 and not formatted:
        return "[NUMBER]"
    return run
