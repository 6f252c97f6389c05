"""Redaction of e-mail addresses, phone numbers and long digit runs, in several scripts."""

from __future__ import annotations

import pytest

from modeling.redaction import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+news@example.co.uk today", "write to [EMAIL] today"),
        ("Kontakt: müller@beispiel.de", "Kontakt: [EMAIL]"),
        ("call +44 20 7946 0958 now", "call [PHONE] now"),
        ("call (555) 123-4567 please", "call [PHONE] please"),
        ("ring 555.123.4567", "ring [PHONE]"),
        ("card 4111111111111111 expired", "card [NUMBER] expired"),
        ("order 123456 shipped", "order [NUMBER] shipped"),
        ("رقم الحساب ١٢٣٤٥٦٧٨٩", "رقم الحساب [NUMBER]"),  # Arabic-Indic digits
        ("फ़ोन +91 98765 43210", "फ़ोन [PHONE]"),
    ],
)
def test_personal_data_is_tagged(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "room 12 was fine, 3 nights in 2024",
        "checked in on 2024-05-01 at 14:30",
        "rated 4.5 out of 5",
        "the price was 12,50 €",
        "no personal data at all",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_several_kinds_in_one_text():
    text = "mail a@b.io or call +1 415 555 0100, ref 98765432"
    assert redact(text) == "mail [EMAIL] or call [PHONE], ref [NUMBER]"
