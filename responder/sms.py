"""SMS segmentation and pricing, counted the way carriers count.

Theory of operation
-------------------
A message is GSM-7 when every character is in the GSM 03.38 basic table or its
extension table; one character outside both switches the *whole* message to
UCS-2. A single segment carries 160 septets (GSM-7) or 70 UTF-16 units (UCS-2).
A longer message is split into concatenated segments that lose room to the UDH
header: 153 septets or 67 units each. Extension characters cost two septets (an
escape plus the character), and an escape pair, a surrogate pair or a grapheme
cluster (emoji with modifiers, ZWJ sequences, flags, combining marks) is never
split across two segments: the splitter starts a new segment instead. (A cluster
longer than a segment, which no language writes, is split between its code points.)
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7 = "GSM-7"
UCS2 = "UCS-2"

_SINGLE = {GSM7: 160, UCS2: 70}
_MULTI = {GSM7: 153, UCS2: 67}


@dataclass(frozen=True)
class SegmentInfo:
    """How a text travels: its encoding, the number of segments, and the units it uses."""

    encoding: str
    segments: int
    units: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=False)


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM 03.38 basic or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _is_extender(ch: str) -> bool:
    code = ord(ch)
    return (
        unicodedata.combining(ch) != 0
        or unicodedata.category(ch) in ("Mn", "Me")
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
        or code == 0x20E3  # combining enclosing keycap
    )


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def graphemes(text: str) -> list[str]:
    """Split ``text`` into grapheme clusters, close enough to UAX #29 for SMS splitting.

    Clusters: a base character with its combining marks, variation selectors and
    skin-tone modifiers; ZWJ sequences; regional-indicator pairs (flags); CR LF.
    """
    clusters: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        if text[i] == "\r" and j < n and text[j] == "\n":
            clusters.append("\r\n")
            i = j + 1
            continue
        if _is_regional_indicator(text[i]) and j < n and _is_regional_indicator(text[j]):
            j += 1
        while j < n:
            ch = text[j]
            if _is_extender(ch):
                j += 1
            elif ch == "\u200d" and j + 1 < n:
                j += 2  # the joiner glues the next character to this cluster
            else:
                break
        clusters.append(text[i:j])
        i = j
    return clusters


def _cost(cluster: str, encoding: str) -> int:
    if encoding == GSM7:
        return sum(2 if ch in GSM7_EXTENSION else 1 for ch in cluster)
    return len(cluster.encode("utf-16-le")) // 2


def split_segments(text: str) -> tuple[str, list[str]]:
    """Return the encoding and the list of segment texts the carrier would send."""
    encoding = GSM7 if is_gsm7(text) else UCS2
    clusters = graphemes(text) if encoding == UCS2 else list(text)
    costs = [_cost(c, encoding) for c in clusters]
    if sum(costs) <= _SINGLE[encoding]:
        return encoding, [text] if text else [""]
    room = _MULTI[encoding]
    if any(cost > room for cost in costs):
        # A cluster longer than a segment (a letter under 140 combining marks) cannot
        # stay whole: it is split between its code points, as a carrier splits any text
        # (a surrogate pair still never splits); kept whole, its segment was under-counted.
        clusters = [part for cluster, cost in zip(clusters, costs, strict=True)
                    for part in (list(cluster) if cost > room else [cluster])]
        costs = [_cost(c, encoding) for c in clusters]
    segments: list[str] = []
    current: list[str] = []
    used = 0
    for cluster, cost in zip(clusters, costs, strict=True):
        if used + cost > room and current:
            segments.append("".join(current))
            current, used = [], 0
        current.append(cluster)
        used += cost
    if current:
        segments.append("".join(current))
    return encoding, segments


def segment_info(text: str) -> SegmentInfo:
    """Encoding, segment count and units (septets or UTF-16 units) of ``text``."""
    encoding = GSM7 if is_gsm7(text) else UCS2
    if encoding == GSM7:
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
    else:
        units = len(text.encode("utf-16-le")) // 2
    if units <= _SINGLE[encoding]:
        return SegmentInfo(encoding, 1, units)
    _, parts = split_segments(text)
    return SegmentInfo(encoding, len(parts), units)


def non_gsm7_characters(text: str) -> list[str]:
    """The distinct characters that force ``text`` into UCS-2, in order of appearance."""
    seen: dict[str, None] = {}
    for ch in text:
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION:
            seen.setdefault(ch, None)
    return list(seen)


def price_micros(text: str, micros_per_segment: int) -> int:
    """Exact price of sending ``text`` once, in integer micro-units."""
    return segment_info(text).segments * micros_per_segment


# Twilio refuses a longer body (error 21617, "The concatenated message body exceeds the
# 1600 character limit"): a reply this long could never be sent, only retried and counted.
MAX_BODY_CHARS = 1600


def reply_text_problem(text: str) -> tuple[str, str] | None:
    """What makes ``text`` unfit as an automatic reply, as ``(problem, fix)``, or None.

    Too long for the provider (over ``MAX_BODY_CHARS`` characters), or holding a control
    character other than a line break: GSM-7 carries LF and CR, and nothing else of the kind
    (a NUL or an escape in a config file is a typo, and a carrier drops or mangles it).
    """
    if len(text) > MAX_BODY_CHARS:
        return (f"is {len(text):,} characters long; the provider refuses a body over "
                f"{MAX_BODY_CHARS:,} (Twilio error 21617)",
                f"shorten the reply to at most {MAX_BODY_CHARS:,} characters (a short one "
                "costs less too: check it with `raidsim segments`)")
    for index, ch in enumerate(text):
        if ch not in "\n\r" and unicodedata.category(ch) == "Cc":
            return (f"holds the control character U+{ord(ch):04X} at character {index + 1}",
                    "an SMS carries text and line breaks (\\n, \\r) only; remove it")
    return None
