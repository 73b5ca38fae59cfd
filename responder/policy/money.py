"""Exact money: amounts are integer micro-euros (1e-6 EUR); prices come in as Decimal strings."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

MICROS_PER_UNIT = 1_000_000
_PLAIN = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
# The largest amount a database column holds (64-bit signed integer micros): ~9.2e12 EUR.
MAX_MICROS = 2**63 - 1


class MoneyError(ValueError):
    """An amount that cannot be represented exactly in micro-units."""


def to_micros(amount: Decimal | str | int) -> int:
    """Convert an amount in currency units to integer micro-units, refusing any rounding."""
    if isinstance(amount, float):
        raise MoneyError(
            f"money must not be a float: {amount!r}; write it as a string, e.g. \"0.16\""
        )
    if isinstance(amount, str) and not _PLAIN.fullmatch(amount.strip()):
        # Decimal also reads "1e3", "1_000" and other scripts' digits: an operator's
        # RAIDSIM_BUDGET_EUR or admin cap is taken only as plain ASCII digits
        raise MoneyError(f"not an amount: {amount!r}; write plain digits, e.g. \"1000\" "
                         "or \"0.16\"")
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation as exc:
        raise MoneyError(f"not an amount: {amount!r}") from exc
    if not value.is_finite():
        raise MoneyError(f"not a finite amount: {amount!r}")
    if value.is_zero():
        return 0
    too_large = f"{amount!r} is too large (at most {MAX_MICROS // MICROS_PER_UNIT:,} units)"
    if value.adjusted() > 18:  # checked first, so that 10**shift below stays small
        raise MoneyError(too_large)
    # Integer arithmetic on the digits: Decimal multiplication would round to the
    # context's 28 digits and turn an inexact amount into a "whole" number of micros.
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    coefficient = int("".join(str(d) for d in digits))
    shift = exponent + 6
    if shift >= 0:
        micros: int = coefficient * 10**shift
    else:
        if -shift > len(digits):  # a non-zero amount below one micro-unit
            raise MoneyError(f"{amount!r} has more than 6 decimal places")
        micros, rest = divmod(coefficient, 10**-shift)
        if rest:
            raise MoneyError(f"{amount!r} has more than 6 decimal places")
    if micros > MAX_MICROS:
        raise MoneyError(too_large)
    return -micros if sign else micros


def from_micros(micros: int) -> Decimal:
    """Integer micro-units back to an exact Decimal amount, e.g. 160000 -> Decimal('0.16')."""
    value = Decimal(micros).scaleb(-6)
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def format_eur(micros: int) -> str:
    """Human form with at least cents: 4800000000 -> '4,800.00'."""
    value = Decimal(micros) / MICROS_PER_UNIT
    text = f"{value:,.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"
