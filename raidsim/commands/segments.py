"""``raidsim segments TEXT``: how carriers will count and bill a text."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "segments",
        help="count the SMS segments of a text (GSM-7 vs UCS-2)",
        description=(
            "Print how a text travels as SMS: its encoding (GSM-7 or UCS-2), the number of "
            "segments it is billed as, and the units it uses (septets or UTF-16 units). "
            "Reads the text from standard input when TEXT is '-'."
        ),
    )
    parser.add_argument("text", metavar="TEXT", help="the message text, or - for stdin")
    parser.add_argument(
        "--explain", action="store_true",
        help="also list the characters that force UCS-2",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from responder.sms import non_gsm7_characters, segment_info

    text = sys.stdin.read() if args.text == "-" else args.text
    info = segment_info(text)
    out: dict[str, object] = {"encoding": info.encoding, "segments": info.segments,
                              "units": info.units}
    if args.explain:
        out["ucs2_characters"] = non_gsm7_characters(text)
    print(json.dumps(out, ensure_ascii=False))
    return 0
