"""``raidsim segments TEXT``: how carriers will count and bill a text."""

from __future__ import annotations

import argparse
import json
import os
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "segments",
        help="count the SMS segments of a text (GSM-7 vs UCS-2)",
        description=(
            "Print how a text travels as SMS: its encoding (GSM-7 or UCS-2), the number of "
            "segments it is billed as, and the units it uses (septets or UTF-16 units). "
            "Reads the text from standard input when TEXT is '-', less the one line end "
            "that echo or a file's last line adds (a line end inside the text counts)."
        ),
        epilog="exit codes: 0 printed (with a warning on stderr for a text over 1,600 "
        "characters, which providers refuse), 2 usage error (or standard input not UTF-8)",
    )
    parser.add_argument("text", metavar="TEXT", help="the message text, or - for stdin")
    parser.add_argument(
        "--explain", action="store_true",
        help="also list the characters that force UCS-2",
    )
    parser.set_defaults(func=run)


# Far more than any SMS (1,600 characters, at most 6,400 bytes of UTF-8), far less than
# what takes the count seconds.
MAX_STDIN_BYTES = 64 * 1024


def run(args: argparse.Namespace) -> int:
    from raidsim.cli import UsageError
    from responder.sms import MAX_BODY_CHARS, non_gsm7_characters, segment_info

    if args.text == "-":
        raw = sys.stdin.buffer.read(MAX_STDIN_BYTES + 1)
        if len(raw) > MAX_STDIN_BYTES:  # /dev/zero, a log file: counting took minutes
            raise UsageError(f"standard input is more than {MAX_STDIN_BYTES // 1024:,} KiB: "
                             f"not an SMS (hint: a body is at most {MAX_BODY_CHARS:,} "
                             "characters; pipe one text)")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"standard input is not UTF-8: byte 0x{raw[exc.start]:02x} at "
                             f"offset {exc.start} (hint: pipe UTF-8 text)") from exc
        # `echo TEXT | raidsim segments -` must count TEXT: a 160-character reply plus
        # echo's line feed would read as 161 septets, two segments
        text = text.removesuffix("\r\n") if text.endswith("\r\n") else text.removesuffix("\n")
    else:
        text = args.text
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # argv bytes undecoded (surrogateescape)
            # Python read argv in the locale's encoding (ASCII under LC_ALL=C with no UTF-8
            # mode): its bytes come back whole with os.fsencode, and may be UTF-8
            try:
                text = os.fsencode(text).decode("utf-8")
            except UnicodeError:
                raise UsageError(f"TEXT is not UTF-8 at character {exc.start + 1} (hint: "
                                 "check the terminal's encoding, or pipe the text: ... | "
                                 "raidsim segments -)") from exc
    info = segment_info(text)
    out: dict[str, object] = {"encoding": info.encoding, "segments": info.segments,
                              "units": info.units}
    if args.explain:
        out["ucs2_characters"] = non_gsm7_characters(text)
    print(json.dumps(out, ensure_ascii=False))
    if len(text) > MAX_BODY_CHARS:
        print(f"raidsim segments: warning: {len(text):,} characters: providers refuse a body "
              f"over {MAX_BODY_CHARS:,} (Twilio error 21617), so such a reply is never sent; "
              "raidsim refuses it as a reply text", file=sys.stderr)
    return 0
