"""Structured JSON logs. Phone numbers only ever appear as keyed-hash pseudonyms."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import sys
import time
from typing import Any

LOGGER_NAME = "raidsim.responder"
log = logging.getLogger(LOGGER_NAME)


def pseudonymise(key: bytes, number: str) -> str:
    """A stable, non-reversible stand-in for a phone number: HMAC-SHA256, 16 hex digits."""
    return "p_" + hmac.new(key, number.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


# A run of 7 or more digits, with its "+" if any: a phone number in a provider's error
# text ("The 'To' number +33612345678 is not a valid phone number.", Twilio 21211).
# Digits of any script (\d on str patterns: Arabic-Indic, full-width...) and a full-width
# plus: a sender may write its number in them, and the provider's error repeats it.
# The digits may be broken by spaces, dots, dashes, slashes or brackets ("+33 6 12 34 56
# 78", "(0)6.12..."): a sender written so (answered with senders.reply_to_alphanumeric)
# is quoted as written, and its pseudonym is then the one its log lines' ``to`` shows.
_DIGIT_RUN = re.compile(r"[+\uff0b]?\d(?:[ \t\u00a0\u202f.()/-]*\d){6,}")


def redact_numbers(key: bytes, text: str | None) -> str | None:
    """``text`` with every phone-number-like run of digits replaced by its pseudonym."""
    if not text:
        return text
    return _DIGIT_RUN.sub(lambda match: pseudonymise(key, match.group()), text)


# A phone number standing alone inside a message id: a provider's own ids (Twilio's
# "SM" and 32 hex digits) never hold one, but a generic webhook's "id" is whatever the
# integration sends, and may be the sender's number ("generic:+33612345678").
_NUMBER_IN_ID = re.compile(r"(?<![0-9A-Za-z])" + _DIGIT_RUN.pattern + r"(?![0-9A-Za-z])")


def redact_id(key: bytes, message_id: str) -> str:
    """A message id for the logs: a phone number standing alone in it is pseudonymised;
    any other id is logged as it is, so log lines still match the provider's."""
    if message_id.isascii() and message_id.isalnum() and not message_id.isdigit():
        return message_id  # letters and digits only (a Twilio sid): no number stands alone
    return _NUMBER_IN_ID.sub(lambda match: pseudonymise(key, match.group()), message_id)


# The password of a URL's user info: ``scheme://user:PASSWORD@host``.
_URL_PASSWORD = re.compile(r"(//[^/@:\s]*):[^/@\s]*@")


def redact_url(url: str) -> str:
    """A URL for an error message or a log line: its password, if any, as ``***``
    (``postgresql://app:***@db/raidsim``), whether or not the rest of it parses."""
    return _URL_PASSWORD.sub(r"\1:***@", url)


_TRACEBACK = "Traceback (most recent call last):"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        traceback = None
        if not record.exc_info and message.startswith(_TRACEBACK):
            # a traceback logged as the message (uvicorn's lifespan does): the exception
            # line is the event, the traceback its "exc" field, as with exc_info
            traceback, message = message.rstrip("\n"), message.rstrip().splitlines()[-1]
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": message,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif traceback is not None:
            out["exc"] = traceback
        return json.dumps(out, ensure_ascii=False, default=str)


def enabled(level: int = logging.INFO) -> bool:
    """Whether ``event`` at ``level`` would be logged: skip building costly fields otherwise."""
    return log.isEnabledFor(level)


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event. Never pass raw phone numbers: use ``pseudonymise``."""
    if log.isEnabledFor(level):
        log.log(level, name, extra={"fields": fields})


def configure(level: str = "INFO") -> None:
    """JSON lines on stderr for the responder's logger (idempotent)."""
    logging.Formatter.converter = time.gmtime
    if not any(getattr(h, "_raidsim", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._raidsim = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(level.upper())


def server_log_config() -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn (its ``log_config``): its own lines
    (``Started server process``, ``Child process [...] died``, ``Invalid HTTP request
    received.``, its tracebacks) and anything another library logs at WARNING or above
    come out as the responder's do, one JSON object per line on stderr, a traceback in
    the ``exc`` field. uvicorn applies it in each process it runs, workers included."""
    handler = {"class": "logging.StreamHandler", "formatter": "json",
               "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"json": handler},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["json"], "level": "WARNING"},
    }
