"""Sender numbers: French mobiles in E.164, built from a seeded permutation, never Faker.

Regular numbers (``+336...`` and ``+337...``) come from a keyed Feistel permutation of a
counter, so every source of a scenario hands out distinct numbers without remembering them:
source ``i`` owns counters ``i * 2**22`` onwards. ``+3375...`` is kept out of that space for
virtual-number blocks, the rented ranges that raiders rotate through.
"""

from __future__ import annotations

import random

_BITS = 28                      # 2**28 > 190,000,000 regular numbers
_HALF = _BITS // 2
_MASK = (1 << _HALF) - 1
_REGULAR = 190_000_000          # 06 xx xx xx xx (10**8) and 07 xx xx xx xx without 075 (9 * 10**7)
_PER_SOURCE = 1 << 22


class MobileNumbers:
    """Distinct regular French mobile numbers for one traffic source."""

    __slots__ = ("_keys", "_next")

    def __init__(self, scenario_seed: int, source_index: int) -> None:
        keys = random.Random(f"raidsim-numbers:{scenario_seed}")
        self._keys = tuple(keys.getrandbits(32) for _ in range(4))
        self._next = (source_index % 64) * _PER_SOURCE

    def fresh(self) -> str:
        """A number no other sender of this scenario has."""
        value = self._permute(self._next)
        self._next += 1
        if value < 100_000_000:
            return f"+336{value:08d}"
        rest = value - 100_000_000          # 0 .. 89,999,999
        second = rest // 10_000_000         # 0..8, skipping 5 (virtual blocks)
        return f"+337{second + (second >= 5)}{rest % 10_000_000:07d}"

    def _permute(self, counter: int) -> int:
        value = counter % (1 << _BITS)
        while True:  # cycle-walk until the value is inside the regular range
            left, right = value >> _HALF, value & _MASK
            for key in self._keys:
                mixed = ((right * 0x9E3779B1) ^ key) & 0xFFFFFFFF
                mixed = ((mixed ^ (mixed >> 15)) * 0x85EBCA6B) & 0xFFFFFFFF
                left, right = right, left ^ ((mixed ^ (mixed >> 13)) & _MASK)
            value = (left << _HALF) | right
            if value < _REGULAR:
                return value


class VirtualBlocks:
    """A few rented ranges of virtual numbers (``+3375`` + prefix + ``width`` free digits)."""

    __slots__ = ("_prefixes", "_rng", "_width")

    def __init__(self, rng: random.Random, blocks: int, width: int) -> None:
        width = min(max(width, 1), 7)
        self._rng = rng
        self._width = width
        fixed = 7 - width
        self._prefixes = tuple(
            "+3375" + (f"{rng.randrange(10 ** fixed):0{fixed}d}" if fixed else "")
            for _ in range(max(blocks, 1))
        )

    def number(self) -> str:
        prefix = self._rng.choice(self._prefixes)
        return f"{prefix}{self._rng.randrange(10 ** self._width):0{self._width}d}"
