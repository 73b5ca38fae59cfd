"""Service settings: environment variables over an optional TOML file over defaults.

Every setting has an environment variable ``RAIDSIM_<NAME>`` and a TOML key
``<name>`` (lower case) in the file named by ``RAIDSIM_CONFIG``. The file may also
carry a ``[policy]`` table. See docs/responder.md for the list.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from responder.logs import redact_url
from responder.policy.config import PolicyConfig
from responder.policy.errors import ConfigError, locate, parse_toml, read_utf8
from responder.policy.ledger import Caps
from responder.policy.money import MoneyError, to_micros

_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# What an HTTP header carries as a bearer token, unchanged: visible ASCII, no space.
_HEADER_TOKEN = re.compile(r"[!-~]+")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (``127.0.0.1``, ``[::1]``, ``localhost``) is reachable from this
    machine only."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    twilio_account_sid: str
    twilio_auth_token: str
    twilio_api_base: str = "https://api.twilio.com"
    twilio_webhook_signing_key: str | None = None
    public_url: str | None = None
    database_url: str = "sqlite:///raidsim.db"
    budget_eur: Decimal | None = None
    budget_hour_eur: Decimal | None = None
    admin_token: str | None = None
    metrics_token: str | None = None
    policy_file: str | None = None
    from_number: str | None = None
    status_callback: bool = True
    webhook_secret: str | None = None
    pseudonym_key: str | None = None
    retention_days: float = 30.0
    max_body_bytes: int = 64 * 1024
    send_concurrency: int = 4
    send_rate_per_s: float = 0.0  # 0: unpaced; else at most this many provider calls per second
    send_connect_timeout_s: float = 5.0
    send_read_timeout_s: float = 10.0
    send_max_attempts: int = 8
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0
    drain_timeout_s: float = 10.0
    log_level: str = "INFO"
    instance_id: str | None = None
    policy: PolicyConfig = field(default_factory=PolicyConfig)

    @property
    def caps(self) -> Caps:
        """The ledger caps: the policy's budget, with RAIDSIM_BUDGET_EUR* overriding it."""
        budget = self.policy.budget
        total = budget.total_micros if budget.enabled else None
        hour = budget.per_hour_micros if budget.enabled else None
        if self.budget_eur is not None:
            total = to_micros(self.budget_eur)
        if self.budget_hour_eur is not None:
            hour = to_micros(self.budget_hour_eur)
        return Caps(total_micros=total, per_hour_micros=hour)

    @property
    def pseudonym_secret(self) -> bytes:
        """The key for pseudonymous phone numbers in logs; derived from the token by default."""
        return (self.pseudonym_key or f"raidsim-pseudonym:{self.twilio_auth_token}").encode()


_REQUIRED = ("twilio_account_sid", "twilio_auth_token")
_MAX_INT = 1_000_000_000
_MAX_CONCURRENCY = 1000
_SETTABLE = {f.name for f in fields(Settings)} - {"policy"}


def _env_name(name: str) -> str:
    return f"RAIDSIM_{name.upper()}"


# RAIDSIM_ variables that are not service settings: the settings file, and those read by
# `raidsim load`'s Locust workers, the test suite and the HTML report's browser check, and
# the file where `raidsim serve --workers N`'s workers report a failed start
_OTHER_ENV = ("RAIDSIM_CONFIG", "RAIDSIM_SERVE_START_ERROR_FILE", "RAIDSIM_SERVE_SUPERVISOR_PID")
_OTHER_ENV_PREFIXES = ("RAIDSIM_LOAD_", "RAIDSIM_TEST_")


def unknown_env(env: Mapping[str, str]) -> list[str]:
    """One line per RAIDSIM_* variable in ``env`` that no setting reads, with the closest
    setting's name when it looks like a typo (RAIDSIM_BUDGT_EUR): an operator who sets a
    cap under a wrong name must not get a service with no cap, so ``load_settings``
    refuses them."""
    import difflib

    known = sorted(_env_name(n) for n in _SETTABLE)
    lines = []
    for name in sorted(env):
        if (not name.startswith("RAIDSIM_") or name in known or name in _OTHER_ENV
                or name.startswith(_OTHER_ENV_PREFIXES)):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else "; see docs/responder.md"
        lines.append(f"{name} is not a raidsim setting{hint}")
    return lines


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read settings from ``env`` (and the TOML file it names); ConfigError says what to fix."""
    raw: dict[str, Any] = {}
    config_path = env.get("RAIDSIM_CONFIG")
    policy_table: Mapping[str, Any] | None = None
    file_text: str | None = None
    from_file: set[str] = set()  # settings whose value comes from the file, not the env
    if config_path:
        path = Path(config_path)
        file_text = read_utf8(path, "RAIDSIM_CONFIG")
        data = parse_toml(file_text, path, hint="settings are the RAIDSIM_ names in lower "
                          "case without the prefix (budget_eur = \"500\"), and a [policy] table")
        for key, value in data.items():
            if key == "policy":
                if not isinstance(value, Mapping):
                    raise ConfigError("[policy] must be a table", path=path)
                policy_table = value
            elif key in _SETTABLE:
                raw[key] = value
                from_file.add(key)
            else:
                import difflib

                close = difflib.get_close_matches(str(key), list(_SETTABLE), n=1, cutoff=0.8)
                raise ConfigError(
                    f"unknown setting {key!r}", path=path, line=locate(file_text, key),
                    hint=(f"did you mean {close[0]}? " if close else "")
                    + "known: " + ", ".join(sorted(_SETTABLE)) + ", [policy]",
                )
    unknown = unknown_env(env)
    if unknown:  # RAIDSIM_BUDGT_EUR=500 would otherwise start the service with no cap
        raise ConfigError("; ".join(unknown),
                          hint="remove or rename it; an unknown key in the file stops the "
                          "service too")
    for name in _SETTABLE:
        value = env.get(_env_name(name))
        if value is not None and value != "":
            raw[name] = value
            from_file.discard(name)
    missing = [_env_name(n) for n in _REQUIRED if not raw.get(n)]
    if missing:
        raise ConfigError(
            f"missing required setting(s): {', '.join(missing)}",
            hint="set the Twilio Account SID and Auth Token from the Twilio console",
        )
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name not in raw:
            continue
        if f.name not in from_file:
            values[f.name] = _coerce(_env_name(f.name), raw[f.name], f.type)
            continue
        try:  # a bad value in the file: name the file, the line and the key as written
            values[f.name] = _coerce(f.name, raw[f.name], f.type)
        except ConfigError as exc:
            raise ConfigError(exc.message, path=config_path, line=locate(file_text, f.name),
                              hint=exc.hint) from exc
    if values.get("policy_file"):
        # A path written in the settings file is relative to that file's folder, not to
        # the working directory (a service manager's is often /); one from the
        # environment is the working directory's. Either is kept absolute, so an error
        # names where it was looked for.
        named = Path(values["policy_file"]).expanduser()
        if not named.is_absolute() and "policy_file" in from_file and config_path:
            named = Path(config_path).parent / named
        values["policy_file"] = str(named.absolute())
    settings = Settings(**values)
    policy = PolicyConfig()
    if settings.policy_file:
        policy = PolicyConfig.load(settings.policy_file)
    if policy_table is not None:
        if settings.policy_file:
            raise ConfigError("give either policy_file or a [policy] table, not both",
                              path=config_path)
        policy = PolicyConfig.from_mapping(policy_table, path=config_path, text=file_text)
    settings = replace(settings, policy=policy)
    _validate(settings)
    return settings


def _coerce(where: str, value: Any, kind: Any) -> Any:
    text = str(kind)
    try:
        if "Decimal" in text:
            if isinstance(value, float):
                raise ConfigError(f"{where}: money must be exact; write it as a string")
            to_micros(str(value))  # a clear MoneyError for text that is not an exact amount
            amount = Decimal(str(value).strip())
            if amount < 0:
                raise ConfigError(f"{where} cannot be negative")
            return amount
        if "bool" in text:
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        if "int" in text:
            if isinstance(value, bool):
                raise ConfigError(f"{where} must be a whole number, got {value!r}")
            number = int(str(value).strip())
            if number < 0:
                raise ConfigError(f"{where} cannot be negative")
            if number > _MAX_INT:  # stored in 64-bit columns and counters
                raise ConfigError(f"{where} is too large: {number} (at most {_MAX_INT:,})")
            return number
        if "float" in text:
            if isinstance(value, bool):
                raise ConfigError(f"{where} must be a number, got {value!r}")
            real = float(str(value).strip())
            if not (math.isfinite(real) and real >= 0):  # nan, inf
                raise ConfigError(f"{where} must be a finite number of at least 0, got "
                                  f"{value!r}")
            return real
    except (ValueError, ArithmeticError, MoneyError) as exc:
        raise ConfigError(f"{where}: cannot read {value!r}: {exc}") from exc
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value.strip()


def check_account_sid(value: str, where: str = "RAIDSIM_TWILIO_ACCOUNT_SID") -> None:
    """Raise ``ConfigError`` unless ``value`` is a Twilio Account SID ('AC' + 32 hex digits),
    naming ``where`` it came from (``raidsim serve`` and ``raidsim fake-provider`` share it)."""
    if not _SID.fullmatch(value):
        raise ConfigError(
            f"{where} must be 'AC' followed by 32 hex digits",
            hint="copy the Account SID from the Twilio console",
        )


def _validate(s: Settings) -> None:
    check_account_sid(s.twilio_account_sid)
    for name in ("twilio_api_base", "public_url"):
        url = getattr(s, name)
        if url is None:
            continue
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 -- raises ValueError for a port out of range
        except ValueError as exc:
            raise ConfigError(f"{_env_name(name)} is not a valid URL: {redact_url(url)!r} ({exc})",
                              hint="write it as https://host or http://host:port") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{_env_name(name)} must be an http(s) URL, got {redact_url(url)!r}")
    if s.from_number is not None and not _E164.match(s.from_number):
        raise ConfigError(f"RAIDSIM_FROM_NUMBER must be an E.164 number, got {s.from_number!r}")
    for name in ("admin_token", "metrics_token"):
        token = getattr(s, name)
        if token is not None and len(token) < 16:
            raise ConfigError(f"{_env_name(name)} must be at least 16 characters")
        if token is not None and not _HEADER_TOKEN.fullmatch(token):
            # an Authorization header cannot carry it: accepted here, it locked the
            # operator out (401 on every call), in the middle of a raid
            raise ConfigError(f"{_env_name(name)} must be printable ASCII without spaces: "
                              "an HTTP header (Authorization: Bearer ...) carries it",
                              hint="generate one with: python -c 'import secrets; "
                              "print(secrets.token_urlsafe(32))'")
    if s.webhook_secret is not None and len(s.webhook_secret) < 16:
        raise ConfigError("RAIDSIM_WEBHOOK_SECRET must be at least 16 characters")
    if s.pseudonym_key is not None and len(s.pseudonym_key) < 16:
        # whoever guesses the key turns the logs' pseudonyms back into numbers
        raise ConfigError("RAIDSIM_PSEUDONYM_KEY must be at least 16 characters",
                          hint="a random one: python -c 'import secrets; "
                          "print(secrets.token_hex(16))'")
    if not 1 <= s.send_concurrency <= _MAX_CONCURRENCY:
        raise ConfigError(f"RAIDSIM_SEND_CONCURRENCY must be from 1 to {_MAX_CONCURRENCY}")
    for name in ("send_connect_timeout_s", "send_read_timeout_s"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"{_env_name(name)} must be above 0",
                              hint="a send that may not wait for the answer is never "
                              "known to be sent; the defaults are 5 and 10 seconds")
    caps = s.caps
    if s.policy.reply_cost_micros == 0 and (caps.total_micros is not None
                                            or caps.per_hour_micros is not None):
        raise ConfigError("a budget cap is set but the policy's eur_per_segment is 0, so no "
                          "reply would count against it",
                          hint='set the provider\'s price, eur_per_segment = "0.16" in the '
                          "[policy] table or the policy file")
    if s.send_max_attempts < 1:
        raise ConfigError("RAIDSIM_SEND_MAX_ATTEMPTS must be at least 1")
    if s.max_body_bytes < 1024:
        raise ConfigError("RAIDSIM_MAX_BODY_BYTES must be at least 1024")
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("RAIDSIM_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    scheme = urlsplit(s.database_url).scheme.lower()
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(
            f"RAIDSIM_DATABASE_URL {redact_url(s.database_url)!r} is not supported",
            hint="use sqlite:///raidsim.db or postgresql://user@host/db",
        )
