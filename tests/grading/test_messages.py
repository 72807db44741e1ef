"""Every diagnosis code and grade status has its message, in each language, with the same fields."""

from __future__ import annotations

import string

import pytest

from service.grading.diagnoses import CODES
from service.grading.messages import MESSAGES

STATUSES = ("correct", "incorrect", "incorrect_scalar", "wrong_shape", "missing", "follows_from")


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("key", [*CODES, *STATUSES])
def test_every_key_is_said_in_every_language(key: str) -> None:
    assert all(key in messages for messages in MESSAGES.values())


@pytest.mark.parametrize("key", [*CODES, *STATUSES])
def test_the_languages_fill_the_same_fields(key: str) -> None:
    english, chinese = fields(MESSAGES["en"][key]), fields(MESSAGES["zh"][key])
    assert english == chinese
