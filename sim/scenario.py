"""Scenario files: one TOML file describes the traffic, the reply, the price and the policy.

``load_scenario`` parses and validates everything the simulator's traffic side needs and
keeps the raw ``[provider]``, ``[[faults]]`` and ``[thresholds]`` tables for their own
parsers, together with the file's path and text so that every error can name its line:
``FILE:LINE: problem (hint: fix)``. ``scenarios/anti-relous-2017.toml`` is the commented
reference for the format.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from responder.policy.config import PolicyConfig, money_field
from responder.policy.errors import ConfigError, locate, parse_toml, read_utf8
from responder.policy.units import DurationTooLong, parse_duration
from responder.sms import reply_text_problem
from sim.metrics import MAX_SPAN_S
from sim.trace import E164, closest
from sim.traffic import KINDS
from sim.traffic.base import MAX_MESSAGES, SpecProblem, TrafficSpec, known_keys, parse_spec

TOP_LEVEL_KEYS = (
    "name", "description", "seed", "duration", "start_at", "number", "pricing", "reply",
    "traffic", "policy", "provider", "faults", "thresholds",
)
DEFAULT_NUMBER = "+33644649021"


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario. ``policy`` already carries the reply text and price per segment."""

    name: str
    seed: int
    duration_s: float
    number: str
    eur_per_segment: Decimal
    reply_text: str
    traffic: tuple[TrafficSpec, ...]
    policy: PolicyConfig
    provider: Mapping[str, Any] = field(default_factory=dict)
    faults: tuple[Mapping[str, Any], ...] = ()
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None
    text: str | None = None
    description: str = ""
    start_at: dt.datetime | None = None
    # the policy's reply_text and eur_per_segment, where this file sets them itself
    # (in [reply], [pricing], [policy] or the policy file it names), not by default
    sets: frozenset[str] = frozenset()

    @property
    def clock_offset_s(self) -> float:
        """Seconds from Monday 00:00 (local time) to t = 0; Monday midnight if unset."""
        if self.start_at is None:
            return 0.0
        midnight = self.start_at.replace(hour=0, minute=0, second=0, microsecond=0)
        return self.start_at.weekday() * 86400.0 + (self.start_at - midnight).total_seconds()

    def line_of(self, dotted: str) -> int | None:
        """Line of a dotted key (``provider.rate``, ``faults[1].start``) in the file."""
        return locate(self.text, dotted)

    def error(self, dotted: str, message: str, hint: str | None = None) -> ConfigError:
        """A ``ConfigError`` pointing at ``dotted`` in this scenario file."""
        return ConfigError(message, path=self.path, line=self.line_of(dotted), hint=hint)

    def with_seed(self, seed: int) -> Scenario:
        return replace(self, seed=seed)


def load_scenario(path: str | Path, *, need_traffic: bool = True) -> Scenario:
    """Read and validate a scenario file; raises ``ConfigError`` naming file, line and fix.
    ``need_traffic=False``: a trace brings the traffic, so ``[[traffic]]`` may be absent
    (the scenario then gives the policy, reply, provider, faults and thresholds)."""
    file = Path(path)
    hint = "check the path; examples live in scenarios/"
    if not os.path.exists(file):  # `raidsim simulate anti-relous-2017`: name the file meant
        # (os.path.exists: Path.exists raises on a name too long for the file system)
        near = [file.with_name(file.name + ".toml"), Path("scenarios") / file.name,
                Path("scenarios") / (file.name + ".toml")]
        found = next((c for c in near if os.path.isfile(c)), None)
        if found is not None:
            hint = f"did you mean {found}?"
    text = read_utf8(file, "scenario", hint=hint)
    data = parse_toml(text, file)
    return scenario_from_mapping(data, path=file, text=text, need_traffic=need_traffic)


def scenario_from_mapping(
    data: Mapping[str, Any], *, path: Path | None = None, text: str | None = None,
    need_traffic: bool = True,
) -> Scenario:
    """Build a ``Scenario`` from parsed TOML; ``path`` and ``text`` locate errors."""

    def fail(dotted: str, message: str, hint: str | None = None,
             example: str | None = None) -> ConfigError:  # (``example``: for --param)
        return ConfigError(message, path=path, line=locate(text, dotted), hint=hint)

    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise fail(key, f"unknown scenario key {key!r}",
                       "known keys: " + ", ".join(TOP_LEVEL_KEYS))

    name = data.get("name", path.stem if path else "scenario")
    if not isinstance(name, str) or not name:
        raise fail("name", f"name must be a non-empty string, got {name!r}",
                   'write name = "my-scenario"')
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise fail("name", f"name holds a control character: {name!r}",
                   "the name goes into report titles and JUnit XML; write it in plain text")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description", "description must be a string", 'write description = "..."')
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise fail("seed", f"seed must be a whole number from 0 to 2**63 - 1, got {seed!r}",
                   "write seed = 2017")
    no_traffic = data.get("traffic") in (None, [])
    if need_traffic and no_traffic:
        raise fail("name", "the scenario has no traffic",
                   'add a [[traffic]] table, e.g. kind = "organic" messages = 1000, or give '
                   "a trace with --trace FILE.jsonl")
    if "duration" not in data and not no_traffic:
        raise fail("name", "the scenario has no duration",
                   'add duration = "7d" at the top: when the number goes silent')
    try:  # with a trace and no traffic of its own, the trace sets the span (366 days at most)
        duration_s = parse_duration(data.get("duration", MAX_SPAN_S))
    except DurationTooLong:
        duration_s = math.inf  # past a century: named below with the run's own bound
    except ValueError as exc:
        raise fail("duration", f"duration: {exc}", 'write duration = "6d20h"') from exc
    if duration_s <= 0:
        raise fail("duration", "duration must be more than 0", 'write duration = "7d"')
    if duration_s > MAX_SPAN_S:
        days = "more than 36,500" if math.isinf(duration_s) else f"{duration_s / 86400:g}"
        raise fail("duration", f"duration is {days} days, longer than the "
                   "366 days a run can cover", 'write at most duration = "366d", or split the '
                   "traffic into several scenarios")
    start_at = _start_at(data.get("start_at"), fail)

    number = _table(data, "number", fail)
    _only(number, "number", ("to",), fail)
    to = number.get("to", DEFAULT_NUMBER)
    if not isinstance(to, str) or not E164.fullmatch(to):
        raise fail("number.to", f"number.to must be an E.164 number, got {to!r}",
                   'write to = "+33644649021"')

    pricing = _table(data, "pricing", fail)
    _only(pricing, "pricing", ("eur_per_segment",), fail)
    reply = _table(data, "reply", fail)
    _only(reply, "reply", ("text",), fail)

    base = PolicyConfig()
    if "eur_per_segment" in pricing:
        base = replace(base, eur_per_segment=money_field(
            pricing["eur_per_segment"], "pricing.eur_per_segment", fail))
    if "text" in reply:
        if not isinstance(reply["text"], str) or not reply["text"].strip():
            raise fail("reply.text", "reply.text must be a non-empty string",
                       'write text = "Bonjour. ..." and check it with `raidsim segments`')
        problem = reply_text_problem(reply["text"])
        if problem is not None:
            raise fail("reply.text", f"reply.text {problem[0]}", problem[1])
        base = replace(base, reply_text=reply["text"])
    policy = _policy(data.get("policy"), base, pricing, reply, path, text, fail)

    traffic = () if no_traffic else _traffic(data.get("traffic"), duration_s, path, text, fail)

    provider = _table(data, "provider", fail)
    thresholds = _table(data, "thresholds", fail)
    faults = data.get("faults", [])
    if not isinstance(faults, list) or not all(isinstance(f, Mapping) for f in faults):
        raise fail("faults", "faults must be tables", "write each one as [[faults]]")
    for index, fault in enumerate(faults):
        try:  # a start that does not read is sim.provider.parse_faults' to explain
            fault_start_s = parse_duration(fault.get("start", 0))
        except ValueError:
            continue
        if fault_start_s >= duration_s:  # as for [[traffic]]: it would never happen
            raise fail(f"faults[{index}].start", f"[[faults]] {fault.get('kind', '')} starts "
                       f"at {_span_text(fault_start_s)}, at or after the scenario ends "
                       f"({_span_text(duration_s)}): it would never fire",
                       "start it earlier or make the scenario's duration longer")

    return Scenario(
        name=name, seed=seed, duration_s=duration_s, number=to,
        eur_per_segment=policy.eur_per_segment, reply_text=policy.reply_text,
        traffic=traffic, policy=policy, provider=provider, faults=tuple(faults),
        thresholds=thresholds, path=path, text=text, description=description,
        start_at=start_at, sets=_reply_and_price_set(data, reply, pricing, policy),
    )


def _reply_and_price_set(data: Mapping[str, Any], reply: Mapping[str, Any],
                         pricing: Mapping[str, Any], policy: PolicyConfig) -> frozenset[str]:
    """Which of reply_text and eur_per_segment the scenario file sets itself."""
    default = PolicyConfig()
    table = data.get("policy")
    table = table if isinstance(table, Mapping) else {}
    sets = {key for key in ("reply_text", "eur_per_segment")
            if key in table or getattr(policy, key) != getattr(default, key)}
    if "text" in reply:
        sets.add("reply_text")
    if "eur_per_segment" in pricing:
        sets.add("eur_per_segment")
    return frozenset(sets)


def _table(data: Mapping[str, Any], key: str, fail: Any) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise fail(key, f"{key} must be a table, got {value!r}", f"write [{key}] and its keys")
    return value


def _only(table: Mapping[str, Any], name: str, allowed: tuple[str, ...], fail: Any) -> None:
    for key in table:
        if key not in allowed:
            raise fail(f"{name}.{key}", f"unknown key {key!r} in [{name}]",
                       "known keys: " + ", ".join(allowed))


def _span_text(seconds: float) -> str:
    """A duration as a scenario file writes it: "1d", "5d20h", "90s", "2.5s"."""
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _path_text(path: Path) -> str:
    """A path for an error message: a 5,000-character one is shown by its two ends."""
    text = str(path)
    return text if len(text) <= 200 else f"{text[:80]}...{text[-80:]} ({len(text):,} characters)"


def _count_text(count: int) -> str:
    """A message count for an error: in full, or about so many when it would not fit."""
    if count < 10**15:
        return f"{count:,}"
    digits = str(count)  # float(count) overflows past 1e308
    return f"about {digits[0]}.{digits[1]}e+{len(digits) - 1:02d}"


def _start_at(value: Any, fail: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)  # local wall-clock time is what matters
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    shown = value.isoformat() if isinstance(value, dt.time) else repr(value)
    raise fail("start_at", f"start_at must be a TOML date-time, got {shown}",
               "write start_at = 2017-10-24T00:00:00 (no quotes): local time at t = 0")


def _policy(
    value: Any, base: PolicyConfig, pricing: Mapping[str, Any], reply: Mapping[str, Any],
    path: Path | None, text: str | None, fail: Any,
) -> PolicyConfig:
    if value is None:
        return base
    if isinstance(value, str):
        if not value.strip():
            raise fail("policy", "policy is an empty path",
                       'name a policy file, policy = "policies/strict.toml", or write a '
                       "[policy] table")
        policy_path = Path(value)
        if not policy_path.is_absolute() and path is not None:
            policy_path = path.parent / policy_path
        if not os.path.exists(policy_path):  # (a name too long is not found either)
            raise fail("policy", f"policy file not found: {_path_text(policy_path)}",
                       "the path is relative to the scenario file")
        if os.path.isdir(policy_path):
            raise fail("policy", f"policy names a directory, not a file: {policy_path}",
                       "name the policy file itself, such as policies/strict.toml")
        loaded = PolicyConfig.load(policy_path)
        changes: dict[str, Any] = {}
        if "text" in reply:
            changes["reply_text"] = base.reply_text
        if "eur_per_segment" in pricing:
            changes["eur_per_segment"] = base.eur_per_segment
        return replace(loaded, **changes)
    if not isinstance(value, Mapping):
        raise fail("policy", "policy must be a table or the path of a policy file",
                   'write [policy] with keys, or policy = "policies/default.toml"')
    for key, section in (("reply_text", ("reply", "text")),
                         ("eur_per_segment", ("pricing", "eur_per_segment"))):
        given = reply if section[0] == "reply" else pricing
        if key in value and section[1] in given:
            raise fail(f"policy.{key}", f"policy.{key} is also set as {'.'.join(section)}",
                       f"set it once, in [{section[0]}]")
    return PolicyConfig.from_mapping(value, path=path, text=text, prefix="policy", base=base)


def traffic_line(text: str | None, index: int = 0) -> int | None:
    """Line of the ``index``-th (0-based) traffic table: its ``[[traffic]]`` header, or the
    ``traffic = [...]`` line of tables written inline."""
    return _header_line(text, "[[traffic]]", index) or locate(text, "traffic")


def _header_line(text: str | None, header: str, index: int) -> int | None:
    """Line of the ``index``-th (0-based) ``header`` such as ``[[traffic]]``."""
    seen = -1
    for number, raw in enumerate((text or "").splitlines(), start=1):
        if raw.split("#", 1)[0].strip().replace(" ", "") == header:
            seen += 1
            if seen == index:
                return number
    return None


def _traffic(
    value: Any, duration_s: float, path: Path | None, text: str | None, fail: Any
) -> tuple[TrafficSpec, ...]:
    if value is None or value == []:
        raise fail("name", "the scenario has no traffic",
                   'add a [[traffic]] table, e.g. kind = "organic" messages = 1000')
    if not isinstance(value, list) or not all(isinstance(t, Mapping) for t in value):
        raise fail("traffic", "traffic must be a list of tables", "write each as [[traffic]]")
    kinds = ", ".join(sorted(KINDS))
    specs = []
    for index, table in enumerate(value):
        where = f"traffic[{index}]"
        kind = table.get("kind")
        if kind is None:
            raise ConfigError(f"[[traffic]] number {index + 1} has no kind", path=path,
                              line=traffic_line(text, index), hint=f"add kind = one of {kinds}")
        if not isinstance(kind, str) or kind not in KINDS:  # a list or table: unhashable
            near = closest(str(kind), KINDS) or "raid"
            raise fail(f"{where}.kind", f"unknown traffic kind {kind!r}",
                       f'write kind = "{near}" (known kinds: {kinds})')
        spec_class = KINDS[kind]
        try:
            spec = parse_spec(spec_class, table)
        except SpecProblem as problem:
            raise fail(f"{where}.{problem.key}", f"[[traffic]] {kind}: {problem.message}",
                       problem.hint) from problem
        if spec.start_s >= duration_s:
            raise fail(f"{where}.start", f"[[traffic]] {kind} starts at or after the scenario "
                       "ends", "start it earlier or make the scenario's duration longer")
        waves = getattr(spec, "waves_s", ())
        _, end_s = spec.window(duration_s)
        late = [w for w in waves if spec.start_s + w >= end_s]
        if late:
            raise fail(f"{where}.waves", f"[[traffic]] {kind}: a wave at {late[0]:g} s after "
                       "its start falls after the source's window ends, so its messages "
                       "would be spread over the background instead",
                       "waves are offsets from the source's start: move the wave earlier "
                       "or make the source or the scenario longer")
        specs.append(spec)
        total = sum(s.planned_messages(duration_s) for s in specs)
        if total > MAX_MESSAGES:
            # (a flood's count is its rate times its window: name the line that set it)
            given = (f"{where}.rate" if spec.kind == "flood" and not spec.messages
                     else f"{where}.messages")
            raise fail(given,
                       f"the traffic adds up to {_count_text(total)} messages, more than the "
                       f"{MAX_MESSAGES:,} a run takes",
                       "a 1,000,000-message raid already peaks at about 540 MB of memory; "
                       "scale the traffic down")
    if not sum(s.planned_messages(duration_s) for s in specs):
        # like an empty trace: a run with no message scores €0 and passes any cost gate
        raise fail("traffic[0].messages", "the traffic adds up to 0 messages",
                   "give at least one [[traffic]] table messages = 1 or more")
    return tuple(specs)


__all__ = ["MAX_MESSAGES", "Scenario", "known_keys", "load_scenario", "scenario_from_mapping"]
