"""Content negotiation for /v1/gradients: JSON or safetensors, each way.

The request's format is its Content-Type; the answer's is chosen from the Accept header
(RFC 9110, section 12.5.1): safetensors only when the client rates it above JSON, so JSON stays
the default for a missing Accept, ``*/*``, or a header naming neither. Errors are always
``application/problem+json``, whatever Accept says.
"""

from __future__ import annotations

from functools import lru_cache

from service.api import safetensors_codec as tensors

JSON = "application/json"
SAFETENSORS = tensors.MEDIA_TYPE


@lru_cache(maxsize=256)
def wants_safetensors(accept: str | None) -> bool:
    """True when `accept` gives safetensors a higher quality than JSON."""
    if not accept:
        return False
    return quality(accept, SAFETENSORS) > quality(accept, JSON)


def quality(accept: str, media_type: str) -> float:
    """The q-value `accept` gives `media_type`: that of its most specific matching range
    (type/subtype over type/* over */*), 0 when none matches."""
    kind = media_type.split("/")[0]
    best_specificity, best_q = -1, 0.0
    for item in accept.split(","):
        media_range, *parameters = (part.strip() for part in item.split(";"))
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range.lower(), -1)
        if specificity > best_specificity:
            best_specificity, best_q = specificity, q_value(parameters)
    return best_q


def q_value(parameters: list[str]) -> float:
    """The q parameter among a media range's parameters (1 when absent or unreadable)."""
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 1.0
    return 1.0
