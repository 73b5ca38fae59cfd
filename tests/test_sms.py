"""SMS segmentation and pricing, counted as carriers count."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from responder.policy.money import MoneyError, format_eur, from_micros, to_micros
from responder.sms import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    UCS2,
    SegmentInfo,
    price_micros,
    segment_info,
    split_segments,
)

GSM_TEXT = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=700)


@pytest.mark.parametrize(
    ("text", "encoding", "segments", "units"),
    [
        ("", GSM7, 1, 0),
        ("a" * 160, GSM7, 1, 160),
        ("a" * 161, GSM7, 2, 161),
        ("a" * 306, GSM7, 2, 306),
        ("a" * 307, GSM7, 3, 307),
        ("€" * 80, GSM7, 1, 160),
        ("€" * 81, GSM7, 2, 162),
        ("é" * 70 + "ç", UCS2, 2, 71),
        ("ç" * 70, UCS2, 1, 70),
        ("ç" * 134, UCS2, 2, 134),
        ("ç" * 135, UCS2, 3, 135),
        ("😀" * 35, UCS2, 1, 70),
        ("😀" * 36, UCS2, 2, 72),
    ],
)
def test_segment_boundaries(text: str, encoding: str, segments: int, units: int) -> None:
    """Single segments hold 160 septets / 70 units; split ones 153 / 67."""
    assert segment_info(text) == SegmentInfo(encoding, segments, units)


@pytest.mark.parametrize("ch", list("éèàùìòÉÇäöüÜæÆ"))
def test_french_characters_that_stay_gsm7(ch: str) -> None:
    """These accented letters are in the GSM 03.38 basic table."""
    assert segment_info(f"Merci {ch}").encoding == GSM7


@pytest.mark.parametrize("ch", [*"çêâîôûëïœÀ«»’…", "\u00a0", "\u202f"])
def test_french_characters_that_force_ucs2(ch: str) -> None:
    """One of these switches the whole message to UCS-2."""
    assert segment_info(f"Merci {ch}").encoding == UCS2


def test_escape_pair_never_splits() -> None:
    """An extension character that would straddle the 153-septet boundary moves whole."""
    encoding, parts = split_segments("a" * 152 + "€" + "b" * 10)
    assert encoding == GSM7
    assert parts[0] == "a" * 152
    assert parts[1].startswith("€")


def test_emoji_grapheme_never_splits() -> None:
    """A ZWJ family emoji stays in one segment."""
    family = "👨\u200d👩\u200d👧"
    encoding, parts = split_segments("a" * 60 + family + "b" * 20)
    assert encoding == UCS2
    assert all(family in p or "\u200d" not in p for p in parts)
    assert "".join(parts) == "a" * 60 + family + "b" * 20


def test_a_cluster_longer_than_a_segment_is_split_between_its_code_points() -> None:
    """A letter under 140 combining marks is one grapheme of 141 units: kept whole, its
    segment held 141 units (billed 2 segments for 145 units, where a carrier bills 3)."""
    text = "Merci" + "\u0301" * 140
    encoding, parts = split_segments(text)
    assert encoding == UCS2 and "".join(parts) == text
    assert all(len(p.encode("utf-16-le")) // 2 <= 67 for p in parts)
    assert segment_info(text) == SegmentInfo(UCS2, 3, 145)
    assert segment_info("a" + "\u0301" * 100).segments == 2  # 101 units: two of 67
    # an emoji (a surrogate pair) inside such a cluster still never splits: the 66 marks
    # leave one unit in the first segment, so it opens the second
    long = "a" + "\u0301" * 65 + "\U0001F600" + "\u0301" * 10
    parts = split_segments(long)[1]
    assert [len(p.encode("utf-16-le")) // 2 for p in parts] == [66, 12]
    assert parts[1].startswith("\U0001F600")


@given(st.text(st.sampled_from("ae\u0301\u0308\U0001F600\u200d"), max_size=300))
def test_marks_and_joiners_split_within_room(text: str) -> None:
    """Texts dense in combining marks and joiners (long clusters) split within room."""
    encoding, parts = split_segments(text)
    assert "".join(parts) == text
    if encoding == UCS2 and len(parts) > 1:
        assert all(len(p.encode("utf-16-le")) // 2 <= 67 for p in parts)
    assert segment_info(text).segments == len(parts)


@given(GSM_TEXT)
def test_gsm_split_respects_room(text: str) -> None:
    """Every GSM-7 segment fits its room and the parts join back to the text."""
    encoding, parts = split_segments(text)
    assert encoding == GSM7
    assert "".join(parts) == text
    cost = [sum(2 if c in GSM7_EXTENSION else 1 for c in p) for p in parts]
    assert all(c <= (160 if len(parts) == 1 else 153) for c in cost)
    assert segment_info(text).segments == len(parts)


@given(st.text(max_size=400))
def test_any_text_splits_losslessly(text: str) -> None:
    """Any Unicode text round-trips through the splitter, within each segment's room."""
    encoding, parts = split_segments(text)
    assert "".join(parts) == text
    if encoding == UCS2 and len(parts) > 1:
        assert all(len(p.encode("utf-16-le")) // 2 <= 67 for p in parts)


def test_price_is_exact() -> None:
    """Price is segments x price per segment, in integer micro-euros."""
    assert price_micros("Bonjour", to_micros("0.16")) == 160_000
    assert price_micros("ç" * 71, to_micros("0.16")) == 320_000
    assert from_micros(3 * 160_000) == from_micros(480_000)
    assert str(from_micros(480_000)) == "0.48"
    assert format_eur(4_800_000_000) == "4,800.00"


def test_money_refuses_floats_and_rounding() -> None:
    """Floats and sub-micro amounts are refused, never rounded."""
    with pytest.raises(MoneyError):
        to_micros(0.16)  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        to_micros("0.0000001")


def test_segments_cli() -> None:
    """`raidsim segments TEXT` prints the contract JSON."""
    out = subprocess.run(
        [sys.executable, "-m", "raidsim", "segments", "Ça coûte 0,16 €"],
        capture_output=True, text=True, check=True,
    )
    assert json.loads(out.stdout) == {"encoding": "UCS-2", "segments": 1, "units": 15}


def test_segments_warns_about_a_text_no_provider_would_send() -> None:
    """A 1,601-character text printed 11 segments and nothing else: the count is right,
    but Twilio refuses such a body (21617) and raidsim refuses it as a reply text."""
    def segments(text: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "raidsim", "segments", text],
                              capture_output=True, text=True, check=True)

    long = segments("x" * 1601)
    assert json.loads(long.stdout) == {"encoding": "GSM-7", "segments": 11, "units": 1601}
    assert "1,601 characters: providers refuse a body over 1,600" in long.stderr
    assert segments("x" * 1600).stderr == ""
