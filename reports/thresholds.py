"""Thresholds: the CI gate on a results JSON.

A threshold is ``METRIC OP LIMIT``: ``spend_eur<=600``, ``reply_latency_s.p95 < 30``,
``legit_coverage>=0.99``. METRIC is a dotted path into any numeric key of the results.

Theory of operation:

* Limits are parsed as :class:`~decimal.Decimal`, and values are converted to Decimal
  through their shortest decimal form (``str``), so ``4800.00 <= 4800`` holds and
  money (keys ending in ``_eur``) is compared exactly, never through binary floats.
* Fail closed: a metric that is missing, null, empty or not a number FAILS, with a
  message that says so. A typo in a metric name can never pass silently.
* ``abort_on_fail`` marks upper bounds on metrics that only grow during a run
  (spend, replies, segments). :func:`should_abort` tells a live driver, from partial
  results, which of those are already broken for good.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from reports.results import out_of_range
from responder.policy.errors import ConfigError, locate

Op = Literal["<=", "<", ">=", ">", "=="]
OPERATORS: tuple[Op, ...] = ("<=", "<", ">=", ">", "==")
# Operators whose failure on a non-decreasing metric cannot be undone later in the run.
UPPER_BOUNDS: frozenset[str] = frozenset({"<=", "<", "=="})

SYNTAX = (
    "expected METRIC OP NUMBER, e.g. 'spend_eur<=600', 'reply_latency_s.p95<30' or "
    "'legit_coverage>=0.99'; METRIC is a dotted path into the results JSON and OP is "
    "one of <=, <, >=, >, =="
)
TABLE_SYNTAX = (
    'in a [thresholds] table write  spend_eur = "<= 600"  or  '
    'spend_eur = { op = "<=", limit = "600", abort_on_fail = true }'
)

_METRIC = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*"
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"  # ASCII digits only
_EXPR = re.compile(rf"^\s*(?P<metric>{_METRIC})\s*(?P<op><=|>=|==|<|>)\s*(?P<limit>{_NUMBER})\s*$")
_OP_AND_LIMIT = re.compile(rf"^\s*(?P<op><=|>=|==|<|>)\s*(?P<limit>{_NUMBER})\s*$")
_ANY_OP = re.compile(r"[<>=!]+")


class ThresholdSyntaxError(ConfigError):
    """A threshold that cannot be parsed; the message shows the expected syntax."""


@dataclass(frozen=True)
class Threshold:
    """One gate: ``metric op limit``. ``source`` says where it was declared."""

    metric: str
    op: Op
    limit: Decimal
    abort_on_fail: bool = False
    source: str | None = None

    @property
    def name(self) -> str:
        return self.metric

    @property
    def is_money(self) -> bool:
        return is_money_metric(self.metric)

    @property
    def expression(self) -> str:
        """Canonical text, e.g. ``spend_eur <= 600``."""
        return f"{self.metric} {self.op} {format_decimal(self.limit)}"

    def key(self) -> tuple[str, str, Decimal]:
        """Identity for de-duplication and for matching thresholds across two runs."""
        return (self.metric, self.op, self.limit)


@dataclass(frozen=True)
class ThresholdResult:
    """The outcome of one threshold on one results object."""

    threshold: Threshold
    value: Decimal | None
    ok: bool
    message: str
    missing: bool = False

    @property
    def name(self) -> str:
        return self.threshold.metric

    @property
    def op(self) -> Op:
        return self.threshold.op

    @property
    def limit(self) -> Decimal:
        return self.threshold.limit

    @property
    def abort_on_fail(self) -> bool:
        return self.threshold.abort_on_fail

    def to_json(self) -> dict[str, Any]:
        """The results JSON form: ``{name, op, limit, value, ok, abort_on_fail, message}``."""
        return {
            "name": self.name,
            "op": self.op,
            "limit": self.limit,
            "value": self.value,
            "ok": self.ok,
            "abort_on_fail": self.abort_on_fail,
            "message": self.message,
        }


# --------------------------------------------------------------------------- parsing


def parse_threshold(
    expr: str, *, source: str | None = None, abort_on_fail: bool = False
) -> Threshold:
    """Parse ``METRIC OP NUMBER``; raise :class:`ThresholdSyntaxError` showing the syntax."""
    if not isinstance(expr, str):
        raise ThresholdSyntaxError(f"threshold must be text, not {type(expr).__name__}",
                                   hint=SYNTAX)
    match = _EXPR.match(expr)
    if match is None:
        raise ThresholdSyntaxError(
            f"bad threshold {expr!r}: {_diagnose(expr)}", path=source, hint=SYNTAX
        )
    limit = _parse_limit(match.group("limit"), expr, source)
    op: Op = match.group("op")  # type: ignore[assignment]
    _check_abort(match.group("metric"), op, abort_on_fail, source=source, line=None)
    _check_share(match.group("metric"), op, limit, source=source, line=None)
    return Threshold(match.group("metric"), op, limit, abort_on_fail, source)


def _diagnose(expr: str) -> str:
    """Say what is wrong with an expression, as precisely as cheaply possible."""
    if not expr.strip():
        return "it is empty"
    ops = _ANY_OP.findall(expr)
    if not ops:
        return "it has no comparison operator"
    bad = [o for o in ops if o not in OPERATORS]
    if bad:
        return f"{bad[0]!r} is not an operator"
    if len(ops) > 1:
        return "it has more than one operator (write one threshold per expression)"
    metric, _, limit = expr.partition(ops[0])
    if not re.fullmatch(rf"\s*{_METRIC}\s*", metric):
        return f"{metric.strip()!r} is not a metric path"
    return f"{limit.strip()!r} is not a number"


# A limit is a money amount, a share, a count or seconds: beyond these it is a typo, and
# 1e999999999 written out digit by digit filled 5 GB of report files.
MAX_LIMIT_PLACES = 12


def _parse_limit(text: str, expr: str, source: str | None, line: int | None = None) -> Decimal:
    try:
        limit = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex only admits numbers
        raise ThresholdSyntaxError(f"bad limit in {expr!r}", path=source, line=line,
                                   hint=SYNTAX) from exc
    if not limit.is_finite():  # pragma: no cover - the regex only admits finite numbers
        raise ThresholdSyntaxError(f"limit must be finite in {expr!r}", path=source, line=line)
    problem = _limit_range_problem(limit)
    if problem is not None:
        raise ThresholdSyntaxError(f"limit {text} in {expr!r} {problem}", path=source,
                                   line=line, hint="write the limit in plain digits, "
                                   "e.g. 1500 or 0.99")
    return limit


def _limit_range_problem(limit: Decimal) -> str | None:
    """Why a limit cannot be a gate's, or None."""
    if out_of_range(limit):  # the bound of every number in a results file
        return "is out of range (at most 1e15 either way)"
    _, digits, exponent = limit.as_tuple()
    zeros = 0
    for digit in reversed(digits):  # trailing zeros do not count: 0.5000 is 0.5
        if digit:
            break
        zeros += 1
    # (zero too: 0E-99999999 is zero, written out with 100 million zeros in every file)
    if isinstance(exponent, int) and exponent + zeros < -MAX_LIMIT_PLACES:
        return f"has more than {MAX_LIMIT_PLACES} decimal places"
    return None


def _check_share(metric: str, op: str, limit: Decimal, *, source: str | None,
                 line: int | None) -> None:
    """A coverage is a share from 0 to 1 (the reports show it as a percentage): a limit
    above 1 is a percentage written as one (``legit_coverage>=99``), which no run meets."""
    share = next((key for key in _SHARE_KEYS if metric == key
                  or metric.startswith(f"replications.{key}.")), None)
    if share is not None and limit > 1:
        raise ThresholdSyntaxError(
            f"'{metric} {op} {format_decimal(limit)}': {share} is a share from 0 to 1, "
            "not a percentage", path=source, line=line,
            hint=f"write {metric} {op} {format_decimal(limit / 100)} for "
                 f"{format_decimal(limit)} %")


_SHARE_KEYS = ("legit_coverage",)


def _check_abort(metric: str, op: str, abort: bool, *, source: str | None,
                 line: int | None) -> None:
    if abort and op not in UPPER_BOUNDS:
        raise ThresholdSyntaxError(
            f"abort_on_fail on '{metric} {op} ...' would stop a run that could still pass",
            path=source, line=line,
            hint="abort_on_fail is for upper bounds (<=, <, ==) on metrics that only grow, "
                 "such as spend_eur",
        )


def thresholds_from_table(
    table: Mapping[str, Any], *, path: str | Path | None = None, text: str | None = None
) -> list[Threshold]:
    """Thresholds from a scenario file's ``[thresholds]`` table (already parsed by tomllib).

    Each key is a metric and each value is ``"<= 600"``, an inline table
    ``{ op = "<=", limit = "600", abort_on_fail = true }``, or a list of those.
    TOML dotted keys (``reply_latency_s.p95 = "< 30"``) arrive as nested tables and
    are flattened back into dotted metric paths. Pass ``text`` (the file's source) for
    line numbers in error messages.
    """
    source = str(path) if path is not None else None
    out: list[Threshold] = []
    for metric, spec in _flatten(table):
        line = locate(text, f"thresholds.{metric}") or locate(text, metric.split(".")[-1])
        if not re.fullmatch(_METRIC, metric):
            raise ThresholdSyntaxError(f"[thresholds] {metric!r} is not a metric path",
                                       path=source, line=line, hint=TABLE_SYNTAX)
        specs = spec if isinstance(spec, list) else [spec]
        if not specs:  # an empty list would gate nothing, silently
            raise ThresholdSyntaxError(f"[thresholds] {metric} = []: an empty list sets no "
                                       "threshold", path=source, line=line, hint=TABLE_SYNTAX)
        for item in specs:
            out.append(_from_spec(metric, item, source, line))
    return out


def _flatten(table: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key in table:
        value = table[key]
        metric = f"{prefix}{key}"
        if isinstance(value, Mapping) and not _looks_like_spec(value):
            yield from _flatten(value, f"{metric}.")
        else:
            yield metric, value


_SPEC_KEYS = ("op", "limit", "abort_on_fail")


def _looks_like_spec(table: Mapping[str, Any]) -> bool:
    """Whether a TOML table is one threshold's inline table rather than deeper metrics:
    it has a spec key, or a key that is a misspelling of one (``opp``, ``lmt``), to be
    refused as such with its keys. A table of metric names (``[thresholds.replies]``,
    ``p95 = 5``) is deeper metrics, whose values are checked one by one."""
    import difflib

    return any(key in _SPEC_KEYS or difflib.get_close_matches(str(key), _SPEC_KEYS, n=1,
                                                              cutoff=0.7)
               for key in table)


def _from_spec(metric: str, spec: Any, source: str | None, line: int | None) -> Threshold:
    where = f"[thresholds] {metric}"
    if isinstance(spec, str):
        match = _OP_AND_LIMIT.match(spec)
        if match is None:
            named = _EXPR.match(spec)
            problem = (f"the value repeats the metric; write only the operator and the "
                       f"limit: {metric} = \"{named.group('op')} {named.group('limit')}\""
                       if named is not None else _diagnose(metric + spec))
            raise ThresholdSyntaxError(f"{where} = {spec!r}: {problem}", path=source,
                                       line=line, hint=TABLE_SYNTAX)
        op: Op = match.group("op")  # type: ignore[assignment]
        limit = _parse_limit(match.group("limit"), spec, source, line)
        _check_share(metric, op, limit, source=source, line=line)
        return Threshold(metric, op, limit, False, source)
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"op", "limit", "abort_on_fail"})
        if unknown:
            raise ThresholdSyntaxError(f"{where}: unknown key(s) {', '.join(unknown)}",
                                       path=source, line=line, hint=TABLE_SYNTAX)
        op_text = spec.get("op")
        if op_text not in OPERATORS:
            raise ThresholdSyntaxError(f"{where}: op must be one of <=, <, >=, >, ==, "
                                       f"not {op_text!r}", path=source, line=line,
                                       hint=TABLE_SYNTAX)
        limit = _limit_value(spec.get("limit"), where, source, line)
        abort = spec.get("abort_on_fail", False)
        if not isinstance(abort, bool):
            raise ThresholdSyntaxError(f"{where}: abort_on_fail must be true or false",
                                       path=source, line=line, hint=TABLE_SYNTAX)
        _check_abort(metric, op_text, abort, source=source, line=line)
        _check_share(metric, op_text, limit, source=source, line=line)
        return Threshold(metric, op_text, limit, abort, source)
    raise ThresholdSyntaxError(f"{where}: expected a string or an inline table, "
                               f"not {type(spec).__name__}", path=source, line=line,
                               hint=TABLE_SYNTAX)


def _limit_value(raw: Any, where: str, source: str | None, line: int | None) -> Decimal:
    if isinstance(raw, bool) or raw is None:
        raise ThresholdSyntaxError(f"{where}: limit is required and must be a number",
                                   path=source, line=line, hint=TABLE_SYNTAX)
    if isinstance(raw, int | float | Decimal):
        raw = str(raw)  # a TOML float's repr is its shortest decimal form: 0.99 -> "0.99"
    if isinstance(raw, str) and re.fullmatch(rf"\s*{_NUMBER}\s*", raw):
        limit = Decimal(raw.strip())
        problem = _limit_range_problem(limit)
        if problem is not None:
            raise ThresholdSyntaxError(f"{where}: limit {raw.strip()} {problem}",
                                       path=source, line=line, hint=TABLE_SYNTAX)
        return limit
    raise ThresholdSyntaxError(f"{where}: limit {raw!r} is not a number",
                               path=source, line=line, hint=TABLE_SYNTAX)


def thresholds_from_results(results: Mapping[str, Any]) -> list[Threshold]:
    """The thresholds recorded in a results JSON's ``thresholds`` list, to re-evaluate them.

    A gate fails closed: an entry that cannot be read (not an object, no metric name, an
    unknown operator, a limit that is not a number) raises ``ThresholdSyntaxError`` rather
    than being skipped, so a damaged results file cannot drop its own thresholds.
    """
    recorded = results.get("thresholds")
    out: list[Threshold] = []
    if recorded is None:
        return out
    fix = ('each entry is {"name": "spend_eur", "op": "<=", "limit": 600}, as raidsim '
           "simulate writes it")
    if not isinstance(recorded, list):
        raise ThresholdSyntaxError(
            f"'thresholds' must be a list, not {type(recorded).__name__} (hint: {fix})")
    for number, entry in enumerate(recorded, start=1):
        where = f"'thresholds' entry {number}"
        if not isinstance(entry, Mapping):
            raise ThresholdSyntaxError(
                f"{where} is {type(entry).__name__}, not an object (hint: {fix})")
        name, op = entry.get("name"), entry.get("op")
        if not isinstance(name, str) or not name:
            raise ThresholdSyntaxError(f"{where} has no metric name (hint: {fix})")
        if op not in OPERATORS:
            raise ThresholdSyntaxError(
                f"{where} ({name}): {op!r} is not an operator (hint: use one of "
                f"{', '.join(OPERATORS)})")
        try:
            limit = _limit_value(entry.get("limit"), name, None, None)
        except ThresholdSyntaxError as exc:
            detail = exc.message.removeprefix(f"{name}: ")
            raise ThresholdSyntaxError(f"{where} ({name}): {detail} (hint: {fix})") from exc
        abort = entry.get("abort_on_fail", False)
        if not isinstance(abort, bool):
            raise ThresholdSyntaxError(f"{where} ({name}): abort_on_fail must be true or "
                                       f"false, not {abort!r} (hint: {fix})")
        abort = abort and op in UPPER_BOUNDS  # as recorded: a run stopped on it
        out.append(Threshold(name, op, limit, abort, "results"))
    return out


def merge(*groups: Iterable[Threshold]) -> list[Threshold]:
    """Concatenate threshold lists, dropping later duplicates of ``(metric, op, limit)``."""
    seen: set[tuple[str, str, Decimal]] = set()
    out: list[Threshold] = []
    for group in groups:
        for threshold in group:
            if threshold.key() not in seen:
                seen.add(threshold.key())
                out.append(threshold)
    return out


# --------------------------------------------------------------------------- evaluation


_MISSING = object()


def lookup(results: Mapping[str, Any], metric: str) -> Any:
    """Follow a dotted path; return the module's ``_MISSING`` sentinel when absent."""
    return _lookup(results, metric.split("."))


def _lookup(node: Any, parts: list[str]) -> Any:
    """Follow ``parts``; a key that itself holds dots (``replications`` writes
    ``"reply_latency_s.p95"`` and ``"messages.raid"``) matches several parts at once."""
    if not parts:
        return node
    if isinstance(node, Mapping):
        for end in range(1, len(parts) + 1):  # the plain key first, then dotted keys
            key = ".".join(parts[:end])
            if key in node:
                found = _lookup(node[key], parts[end:])
                if found is not _MISSING:
                    return found
        return _MISSING
    part = parts[0]
    if isinstance(node, list) and part.isdigit() and part.isascii() and int(part) < len(node):
        return _lookup(node[int(part)], parts[1:])
    return _MISSING


def to_decimal(value: Any) -> Decimal | None:
    """A JSON number as an exact Decimal (floats through their shortest repr); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    return None


def evaluate(results: Mapping[str, Any], thresholds: Iterable[Threshold]) -> list[ThresholdResult]:
    """Evaluate each threshold on ``results``, in order. Missing metrics fail."""
    return [_evaluate_one(results, threshold) for threshold in thresholds]


# Count maps that list only what occurred, and the names each can hold: a threshold on a
# name that did not occur reads 0 (``decisions.by_rule.budget_total<=0`` passes when the
# cap was never reached), as long as the run wrote the map; any other name is missing.
PROVIDER_ERROR_KINDS = frozenset((
    "rate_limited", "server_error", "timeout", "connect_error", "rejected",  # both commands
    "auth", "transport", "error",  # load only: the responder's own kinds
))


def _count_names(path: str) -> frozenset[str] | None:
    if path == "decisions.by_rule":
        from responder.policy import RULES

        return frozenset(RULES)
    if path == "provider.errors":
        return PROVIDER_ERROR_KINDS
    return None


def _uncounted(results: Mapping[str, Any], metric: str) -> Any:
    """0 for a known name of a count map the run wrote, where it occurred no time; else
    the ``_MISSING`` sentinel."""
    path, _, name = metric.rpartition(".")
    names = _count_names(path)
    if names is not None and name in names and isinstance(lookup(results, path), Mapping):
        return 0
    return _MISSING


def _evaluate_one(results: Mapping[str, Any], threshold: Threshold) -> ThresholdResult:
    raw = lookup(results, threshold.metric)
    if raw is _MISSING:
        raw = _uncounted(results, threshold.metric)
    problem = _why_not_a_number(raw, threshold.metric)
    if problem is not None:
        message = f"{threshold.expression}: FAILED, {problem}"
        return ThresholdResult(threshold, None, False, message, missing=True)
    value = to_decimal(raw)
    assert value is not None
    ok = compare_values(value, threshold.op, threshold.limit)
    shown_value = format_value(threshold.metric, value)
    shown_limit = format_value(threshold.metric, threshold.limit)
    if ok:
        message = f"{threshold.expression}: ok, value {shown_value}"
    else:
        message = (f"{threshold.expression}: FAILED, value {shown_value}, "
                   f"limit {threshold.op} {shown_limit}{_by_how_much(threshold, value)}")
    return ThresholdResult(threshold, value, ok, message)


def _why_not_a_number(raw: Any, metric: str) -> str | None:
    if raw is _MISSING:
        path, _, name = metric.rpartition(".")
        names = _count_names(path)
        if names is not None and name not in names:
            return (f"metric '{metric}' is missing from the results: '{path}' counts only "
                    f"{', '.join(sorted(names))}")
        return f"metric '{metric}' is missing from the results"
    if raw is None:
        return f"metric '{metric}' is missing (null in the results)"
    if isinstance(raw, Mapping):
        if not raw:
            return f"metric '{metric}' is missing (empty object in the results)"
        keys = sorted(str(k) for k in raw)
        return (f"metric '{metric}' is an object, not a number; "
                f"use one of {', '.join(f'{metric}.{k}' for k in keys[:6])}")
    if isinstance(raw, list | str) and not raw:
        return f"metric '{metric}' is missing (empty in the results)"
    if to_decimal(raw) is None:
        return f"metric '{metric}' is not a finite number ({raw!r:.40})"
    return None


def compare_values(value: Decimal, op: str, limit: Decimal) -> bool:
    if op == "<=":
        return value <= limit
    if op == "<":
        return value < limit
    if op == ">=":
        return value >= limit
    if op == ">":
        return value > limit
    if op == "==":
        return value == limit
    raise ValueError(f"unknown operator {op!r}")


def _by_how_much(threshold: Threshold, value: Decimal) -> str:
    if threshold.op == "==":
        return ""
    try:
        gap = abs(value - threshold.limit)
    except ArithmeticError:  # a value past Decimal's exponent range (a hand-edited file)
        return ""
    word = "over" if threshold.op in ("<=", "<") else "under"
    if gap == 0:
        return ""
    return f" ({word} by {format_value(threshold.metric, gap)})"


def apply(results: dict[str, Any], thresholds: Iterable[Threshold]) -> bool:
    """Evaluate and record: fill ``results["thresholds"]`` and ``results["passed"]``."""
    outcome = evaluate(results, thresholds)
    results["thresholds"] = [r.to_json() for r in outcome]
    results["passed"] = all(r.ok for r in outcome)
    return bool(results["passed"])


def should_abort(
    results_so_far: Mapping[str, Any], thresholds: Iterable[Threshold]
) -> list[ThresholdResult]:
    """The ``abort_on_fail`` thresholds already broken for good by partial results.

    Assumes their metrics never decrease during a run (spend, replies, segments), so
    an upper bound broken now stays broken. A metric not reported yet does not abort.
    """
    broken: list[ThresholdResult] = []
    for threshold in thresholds:
        if not threshold.abort_on_fail or threshold.op not in UPPER_BOUNDS:
            continue
        result = _evaluate_one(results_so_far, threshold)
        if result.missing or result.ok or result.value is None:
            continue
        if threshold.op == "==" and result.value < threshold.limit:
            continue  # still growing towards the limit
        broken.append(result)
    return broken


# --------------------------------------------------------------------------- formatting


_STATISTICS = ("mean", "low", "high")  # replications.spend_eur.mean is money too


def is_money_metric(metric: str) -> bool:
    parts = metric.split(".")
    if len(parts) > 1 and parts[-1] in _STATISTICS:
        parts.pop()
    return parts[-1].endswith("_eur")


def _plain(value: Decimal) -> bool:
    """Whether ``value`` reads well in plain digits: a hand-edited results file may hold
    1e400, which written out is 400 digits (and Decimal arithmetic on it overflows)."""
    return value == 0 or -20 <= value.adjusted() <= 20


def format_decimal(value: Decimal) -> str:
    """Plain notation without exponent: ``Decimal('6E+2')`` -> ``'600'``; scientific
    beyond 20 digits either way."""
    return format(value, "f") if _plain(value) else format(value, "E")


def format_eur(value: Decimal, *, signed: bool = False) -> str:
    """``€4,800.00``; at least cents, more digits only when they are not zero."""
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    if not _plain(value):
        return f"{sign}€{format(abs(value), 'E')}"
    magnitude = abs(value)
    if magnitude == magnitude.quantize(Decimal("0.01")):
        body = f"{magnitude:,.2f}"
    else:
        body = f"{magnitude.normalize():,f}"
    return f"{sign}€{body}"


def format_value(metric: str, value: Decimal) -> str:
    if is_money_metric(metric):
        return format_eur(value)
    return format_decimal(value)


def failed(results: Sequence[ThresholdResult]) -> list[ThresholdResult]:
    return [r for r in results if not r.ok]
