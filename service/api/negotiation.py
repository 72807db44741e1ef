"""Content negotiation: JSON or safetensors for /v1/gradients, English or Chinese for grades.

The request's format is its Content-Type; the answer's is chosen from the Accept header
(RFC 9110, section 12.5.1): safetensors only when the client rates it above JSON, so JSON stays
the default for a missing Accept, ``*/*``, or a header naming neither. Errors are always
``application/problem+json``, whatever Accept says. A grade's messages are in Chinese when
Accept-Language (section 12.5.4) rates ``zh`` above ``en``, and in English otherwise.

Both headers are lists of elements weighted by q (section 12.4.2), read by one parser,
`weighted`: a weight is ``q=`` then a number from 0 to 1 with at most three decimals (``q=1``,
``q=0.5``, ``q=0.125``; the name ``q`` in any case, spaces around ``=`` tolerated), 1 when
absent. An element whose weight is anything else (``q=high``, ``q=2``, ``q=-1``, ``q=0.3333``,
``q=.5``, ``q=``) is malformed, and ignored as if it were not in the header: it neither asks for
a format or a language nor refuses one, and the rest of the header decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from service.api import safetensors_codec as tensors
from service.grading.messages import Language

JSON = "application/json"
HTML = "text/html"
SAFETENSORS = tensors.MEDIA_TYPE

WEIGHT = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")
"""A q-value as RFC 9110 writes it (section 12.4.2): 0 to 1, at most three decimals."""

MAX_CACHED_ACCEPT = 256
"""Accept headers up to this many characters have their choice cached (HTTP libraries send a
few dozen, browsers about 150); a longer one is read each time, so the cache stays small."""


def weighted(header: str) -> Iterator[tuple[str, float]]:
    """Each element of an Accept-style header as its value (a media range or a language tag,
    in lower case, without its parameters) and its weight, in header order; malformed weights
    are left out with their elements (see the module docstring)."""
    for element in header.split(","):
        value, *parameters = element.split(";")
        weight: float | None = 1.0
        for parameter in parameters:
            name, _, text = parameter.partition("=")
            if name.strip().lower() == "q":
                text = text.strip()
                weight = float(text) if WEIGHT.fullmatch(text) else None
                break
        if weight is not None:
            yield value.strip().lower(), weight


def wants_safetensors(accept: str | None) -> bool:
    """True when `accept` gives safetensors a higher weight than JSON."""
    if not accept:
        return False
    if len(accept) > MAX_CACHED_ACCEPT:
        return prefers_safetensors(accept)
    return cached_prefers_safetensors(accept)


def prefers_safetensors(accept: str) -> bool:
    return quality(accept, SAFETENSORS) > quality(accept, JSON)


cached_prefers_safetensors = lru_cache(maxsize=256)(prefers_safetensors)
"""`prefers_safetensors`, remembered for the 256 headers used last (each of at most
MAX_CACHED_ACCEPT characters)."""


def prefers_html(accept: str | None) -> bool:
    """True when `accept` gives HTML a higher weight than JSON, as browsers' headers do."""
    return bool(accept) and quality(accept or "", HTML) > quality(accept or "", JSON)


def quality(accept: str, media_type: str) -> float:
    """The weight `accept` gives `media_type` (in lower case): that of its most specific
    matching range (type/subtype over type/* over */*; the first of equals), 0 when none
    matches."""
    kind = media_type.split("/")[0]
    ranks = {media_type: 2, f"{kind}/*": 1, "*/*": 0}
    best_rank, best_q = -1, 0.0
    for media_range, q in weighted(accept):
        rank = ranks.get(media_range, -1)
        if rank > best_rank:
            best_rank, best_q = rank, q
    return best_q


def language(accept_language: str | None) -> Language:
    """``zh`` when the header gives Chinese (``zh``, ``zh-CN``, ...) a higher weight than
    English (``en``, ``en-US``, ...) or, at equal weights, names it first; else ``en``, also for
    a missing header, one naming neither, and a weight of 0."""
    best: Language = "en"
    best_q = 0.0
    for tag, q in weighted(accept_language or ""):
        primary = tag.split("-")[0]
        if primary in ("en", "zh") and q > best_q:
            best_q, best = q, ("zh" if primary == "zh" else "en")
    return best
