"""Accept and Accept-Language, read by one q-value parser (`service.api.negotiation`)."""

from __future__ import annotations

import pytest

from service.api.negotiation import (
    JSON,
    MAX_CACHED_ACCEPT,
    SAFETENSORS,
    cached_prefers_safetensors,
    language,
    wants_safetensors,
    weighted,
)


@pytest.mark.parametrize(
    ("header", "elements"),
    [
        pytest.param("", [("", 1.0)], id="empty"),
        pytest.param("a/b", [("a/b", 1.0)], id="no-weight-is-1"),
        pytest.param("A/B;q=0.5", [("a/b", 0.5)], id="lower-case"),
        pytest.param(" a/b ; q=0.5 , c/d", [("a/b", 0.5), ("c/d", 1.0)], id="spaces"),
        pytest.param("a/b;Q=0.5", [("a/b", 0.5)], id="name-in-any-case"),
        pytest.param("a/b;q = 0.5", [("a/b", 0.5)], id="spaces-around-equals"),
        pytest.param("a/b;level=1;q=0.25", [("a/b", 0.25)], id="other-parameters-first"),
        pytest.param("a/b;q=0.25;level=1", [("a/b", 0.25)], id="other-parameters-after"),
        pytest.param("a/b;q=0", [("a/b", 0.0)], id="zero"),
        pytest.param("a/b;q=0.", [("a/b", 0.0)], id="zero-point"),
        pytest.param("a/b;q=0.125", [("a/b", 0.125)], id="three-decimals"),
        pytest.param("a/b;q=1.000", [("a/b", 1.0)], id="one-three-zeros"),
        pytest.param("a/b;q=1, c/d;q=0.001", [("a/b", 1.0), ("c/d", 0.001)], id="in-order"),
    ],
)
def test_weights_as_rfc_9110_writes_them(header: str, elements: list[tuple[str, float]]) -> None:
    assert list(weighted(header)) == elements


@pytest.mark.parametrize(
    "weight",
    [
        pytest.param("high", id="word"),
        pytest.param("", id="empty"),
        pytest.param("2", id="above-1"),
        pytest.param("1.5", id="one-and-a-half"),
        pytest.param("1.001", id="just-above-1"),
        pytest.param("-1", id="negative"),
        pytest.param("0.3333", id="four-decimals"),
        pytest.param(".5", id="no-leading-digit"),
        pytest.param("+0.5", id="sign"),
        pytest.param("5e-1", id="exponent"),
        pytest.param("nan", id="nan"),
        pytest.param("inf", id="infinity"),
        pytest.param("0x1", id="hexadecimal"),
        pytest.param("0.5 0.5", id="two-numbers"),
    ],
)
def test_an_element_with_a_malformed_weight_is_ignored(weight: str) -> None:
    assert list(weighted(f"a/b;q={weight}, c/d;q=0.5")) == [("c/d", 0.5)]


@pytest.mark.parametrize(
    ("accept", "binary"),
    [
        pytest.param(None, False, id="missing"),
        pytest.param("", False, id="empty"),
        pytest.param("*/*", False, id="anything"),
        pytest.param(JSON, False, id="json"),
        pytest.param("text/html", False, id="neither"),
        pytest.param(SAFETENSORS, True, id="safetensors"),
        pytest.param(SAFETENSORS.upper(), True, id="safetensors-upper-case"),
        pytest.param(f"{SAFETENSORS}, {JSON};q=0.5", True, id="safetensors-first"),
        pytest.param(f"{JSON}, {SAFETENSORS};q=0.5", False, id="json-first"),
        pytest.param(f"{JSON}, {SAFETENSORS}", False, id="equal-weights"),
        pytest.param(f"application/*;q=0.2, {SAFETENSORS};q=0.9", True, id="type-wildcard"),
        pytest.param(f"application/*, {SAFETENSORS};q=0", False, id="specific-over-wildcard"),
        pytest.param(f"*/*;q=0.1, {SAFETENSORS}", True, id="specific-over-any"),
        pytest.param(f"{SAFETENSORS};q=0", False, id="safetensors-refused"),
        pytest.param(f"{SAFETENSORS};q=0.001", True, id="safetensors-barely"),
        pytest.param(f"{SAFETENSORS};q=high", False, id="malformed-weight-ignored"),
        pytest.param(f"{SAFETENSORS};q=2, {JSON};q=0.5", False, id="out-of-range-ignored"),
        pytest.param(f"{SAFETENSORS};q=0.5, {JSON};q=oops", True, id="malformed-json-weight"),
    ],
)
def test_safetensors_only_when_rated_above_json(accept: str | None, binary: bool) -> None:
    assert wants_safetensors(accept) is binary


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        pytest.param(None, "en", id="missing"),
        pytest.param("", "en", id="empty"),
        pytest.param("de", "en", id="neither"),
        pytest.param("*", "en", id="any"),
        pytest.param("zh", "zh", id="chinese"),
        pytest.param("zh-CN,zh;q=0.9", "zh", id="chinese-region"),
        pytest.param("ZH-cn", "zh", id="upper-case"),
        pytest.param("en-US,en;q=0.9,zh;q=0.8", "en", id="english-first"),
        pytest.param("fr, zh;q=0.5", "zh", id="chinese-after-french"),
        pytest.param("en;q=0.5, zh;q=0.6", "zh", id="chinese-weighted-higher"),
        pytest.param("zh, en", "zh", id="equal-weights-first-wins"),
        pytest.param("en, zh", "en", id="equal-weights-english-first"),
        pytest.param("zh;q=0", "en", id="chinese-refused"),
        pytest.param("zh;q=1.5, en;q=0.5", "en", id="out-of-range-ignored"),
        pytest.param("zh;q=high", "en", id="malformed-weight-ignored"),
        pytest.param("en;q=oops, zh;q=0.1", "zh", id="malformed-english-ignored"),
        pytest.param("zh;level=1;q=0.2, en;q=0.3", "en", id="weight-after-other-parameter"),
    ],
)
def test_language_follows_weights(header: str | None, lang: str) -> None:
    assert language(header) == lang


def test_the_same_weights_decide_both_headers() -> None:
    """One parser: a weight that decides a format decides a language the same way."""
    for weights in [("0.5", "0.6"), ("1", "0.999"), ("high", "0.1"), ("0", "0"), ("2", "0.5")]:
        accept = f"{JSON};q={weights[0]}, {SAFETENSORS};q={weights[1]}"
        accept_language = f"en;q={weights[0]}, zh;q={weights[1]}"
        assert wants_safetensors(accept) == (language(accept_language) == "zh"), weights


def test_only_short_accept_headers_are_cached() -> None:
    cached_prefers_safetensors.cache_clear()
    short = f"{SAFETENSORS}, {JSON};q=0.5"
    long = short + ", text/plain;q=0.1" * (MAX_CACHED_ACCEPT // 10)
    assert len(long) > MAX_CACHED_ACCEPT
    assert wants_safetensors(long) is wants_safetensors(short) is True
    assert cached_prefers_safetensors.cache_info().currsize == 1
    assert wants_safetensors(short) is True
    assert cached_prefers_safetensors.cache_info().hits == 1
