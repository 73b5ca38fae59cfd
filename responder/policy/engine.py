"""The defence policy engine.

Theory of operation
-------------------
Every paid reply is a bet that the sender is a person who was given the number.
A raid wins by making us bet on its senders. The engine keeps a compact memory
of what it has seen (``PolicyState``) and decides each message with a fixed
pipeline of small named rules, first match wins:

1. Bookkeeping and hard rules: one decision per provider message id; the
   operator's kill switch; no reply to short codes, alphanumeric senders,
   opt-out keywords (STOP/ARRET...) or blocked numbers; the per-sender reply
   limit (default one reply per 30 days); one held reply per sender at a time.
2. Evidence of a raid, each of which also flags the sender for good:
   * ``raid_template``: the text is a near-duplicate (Jaccard of character
     4-grams, candidates from a MinHash-style index) of a text that many
     *distinct* senders sent recently, and that template also shows raid
     behaviour: a tenth of its senders paste it again, each counted once (and
     clearly more than this number's own senders' habit of sending their words
     again, when they have one: ``_habit_share``). Short
     texts ("Salut", "c'est qui ?") never form templates: people share those by
     chance.
   * ``number_block``: many new senders from one block of consecutive numbers
     (rotating virtual numbers), corroborated by template evidence or repeats.
   * ``repeat_flood``: a sender still waiting for a reply who keeps sending and
     pastes its own text again (or goes on far longer than people do).
3. Surge: the rate of new senders (and of messages) is compared with a
   baseline learned online (EWMA over fixed windows, frozen while in raid
   mode). When it is abnormal, the engine enters *raid mode* and **holds**
   first-contact replies instead of sending or dropping them. A held reply is
   decided again after at least ``observe_s``: by then a raider has usually
   repeated himself or his template has gone hot. Clean held replies are
   released, prioritised by their suspicion score, as soon as raid mode ends,
   or after ``max_hold_s`` at the latest. A genuine press surge therefore costs
   latency, not coverage.
4. Budget: a reply that would cross the hourly cap is deferred to the next
   hour; one that would cross the total cap is dropped. The ledger enforces
   the same caps atomically; the policy's own accounting only paces.

Everything is a function of (state, message, now). There is no I/O, no clock
and no global random: the same inputs give the same decisions, in the SimPy
model and in the ASGI service alike. ``admit`` and ``release`` are the shared
driver steps that pair each decision with a ledger reservation, so the two
drivers cannot drift apart.
"""

from __future__ import annotations

import heapq
import math
import re
import unicodedata
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain

from responder.policy.config import Fragments as FragmentsConfig
from responder.policy.config import PolicyConfig
from responder.policy.config import Templates as TemplatesConfig
from responder.policy.ledger import Ledger, ReserveRequest, ReserveStatus, RollingSpend
from responder.policy.model import Action, Decision, Message, Released

# ---------------------------------------------------------------------------
# Operator controls (admin API) and per-sender memory


@dataclass
class Controls:
    """Switches an operator flips at run time: kill switch, block and allow lists.

    Entries of ``blocked``/``allowed`` are full E.164 numbers or prefixes ("+3361234").
    """

    kill_switch: bool = False
    blocked: set[str] = field(default_factory=set)
    allowed: set[str] = field(default_factory=set)

    def is_blocked(self, sender: str) -> bool:
        return _matches_prefix(sender, self.blocked)

    def is_allowed(self, sender: str) -> bool:
        return _matches_prefix(sender, self.allowed)


def _matches_prefix(sender: str, entries: set[str]) -> bool:
    if not entries:
        return False
    return any(sender.startswith(entry) for entry in entries)


class _Sender:
    """What the policy remembers about one sender.

    Its times are tuples, not a deque and a list: a raid brings a new sender with most
    messages, and a tuple of floats is one small object the cyclic garbage collector
    stops tracking, so a full collection (a pause of the responder's event loop) does
    not grow with two containers per sender.
    """

    __slots__ = (
        "count",
        "e164",
        "first_key",
        "first_seen",
        "flag",
        "frags",
        "frags_at",
        "habit",
        "held",
        "last_seen",
        "opted_out",
        "recent",
        "repeated",
        "replies",
        "reply_ids",
        "templates",
    )

    def __init__(self, now: float, number: str = "") -> None:
        self.e164 = is_e164(number)
        self.first_key = 0  # _text_key of its first message's text
        self.first_seen = now
        self.last_seen = now
        self.count = 0
        # the latest message times within repeats.window_s, at most state.recent_cap
        self.recent: tuple[float, ...] = ()
        self.replies: tuple[float, ...] = ()  # reply times within sender_limit.window_s
        self.reply_ids: tuple[str, ...] = ()  # their message ids, in the same order
        self.opted_out = False
        self.held = False
        self.flag: str | None = None  # rule that judged this sender a raider
        self.frags: frozenset[str] = frozenset()  # phrases this sender has used
        self.frags_at = now  # when the first message whose phrases are in frags came
        self.templates: tuple[int, ...] = ()  # templates this sender has sent (at most 16)
        self.repeated: tuple[int, ...] = ()  # ...and those it has sent again (counted once)
        self.habit = 0  # counted in the habit: as a first contact, then as a reuser


class _Template:
    """A cluster of near-identical texts: its first text's shingles and who sent it."""

    __slots__ = ("born", "clean", "disguised", "first", "hot_at", "last", "look_alike",
                 "public", "repeats", "retries", "shingles", "shingles_at")

    def __init__(self, shingles: frozenset[str], at: float) -> None:
        self.shingles = shingles
        self.shingles_at = at  # when the text they come from came (see forget_texts)
        # decayed count of its senders whose copy hid itself (zero-width characters inside
        # words, look-alike letters): raid evidence once they are a share (_disguised)
        self.disguised = 0.0
        self.look_alike = False  # some member hid itself with look-alike letters: a raid's
        self.first = 0.0  # decayed count of distinct senders
        self.repeats = 0.0  # decayed count of those senders who sent it again
        self.retries = 0.0  # ...and of those who sent it again at once (see _RETRY_S)
        self.last = 0.0
        self.hot_at: float | None = None
        self.born: float | None = None  # when its first sender was counted
        self.clean = 0  # distinct senders before anyone sent it again (see _first_reuse)
        self.public = False


class _Sketch:
    """What a text's words give, whoever sees it: a pure function of the text and
    ``templates.min_words``, so runs may share it (see ``TextSketches``)."""

    __slots__ = ("disguised", "grams", "keys", "phrases")

    def __init__(self, grams: frozenset[str] | None, phrases: frozenset[str],
                 disguised: int, keys: list[str] | None = None) -> None:
        self.grams = grams  # character 4-grams, or None for texts too short to compare
        self.phrases = phrases  # word trigrams
        self.disguised = disguised  # how it hides itself (see _normalise): 0, 1 or 2
        self.keys = keys  # the grams the template index files it under (see _template_for)


class _Text:
    """What one policy state knows of one distinct text: its sketch and its template."""

    __slots__ = ("disguised", "grams", "keys", "phrases", "seen", "sketch", "template")

    def __init__(self, sketch: _Sketch) -> None:
        self.grams = sketch.grams
        self.phrases = sketch.phrases
        self.disguised = sketch.disguised
        self.keys = sketch.keys
        self.sketch = sketch
        self.template = NO_TEMPLATE
        self.seen = -math.inf  # when a message with this text last came (see forget_texts)


class TextSketches:
    """Sketches of the texts seen so far (normalised words, 4-grams, phrases, index keys).

    A sketch depends only on the text and ``min_words``, never on what a policy has seen,
    so one cache may serve many policy states in turn: a sweep or a set of replications
    over the same traffic sketches each text once, not once per run. A state makes its
    own when given none, or one built for another ``min_words``. Bounded: it starts
    afresh past ``max_texts`` texts, which costs time, never a different decision.
    """

    def __init__(self, min_words: int, *, max_texts: int = 200_000) -> None:
        self.min_words = min_words
        self.max_texts = max_texts
        self.by_text: dict[str, _Sketch] = {}
        # the first sketch per normalised text, whose 4-grams, phrases and index keys a
        # later raw text with the same words shares: raid mutations (emoji, punctuation,
        # accents) give many raw texts with the same words
        self.by_words: dict[str, _Sketch] = {}

    def __len__(self) -> int:
        return len(self.by_text)

    def get(self, text: str) -> _Sketch:
        sketch = self.by_text.get(text)
        if sketch is not None:
            return sketch
        words, hidden = _normalise(text)
        joined = " ".join(words)
        twin = self.by_words.get(joined)
        if twin is not None:
            sketch = _Sketch(twin.grams, twin.phrases, hidden, twin.keys)
        else:
            # zip over shifted copies builds the n-grams in C: the same sets as slicing
            # joined[i:i + 4] and words[i:i + 3] at every position i
            grams = (
                frozenset(map("".join, zip(joined, joined[1:], joined[2:], joined[3:],
                                           strict=False)))
                if len(words) >= self.min_words
                else None
            )
            phrases = frozenset(map(" ".join, zip(words, words[1:], words[2:], strict=False)))
            sketch = _Sketch(grams, phrases, hidden)
            if len(self.by_words) >= self.max_texts:
                self.by_words.clear()
            self.by_words[joined] = sketch
        if len(self.by_text) >= self.max_texts:
            self.by_text.clear()
        self.by_text[text] = sketch
        return sketch


class _Fragment:
    """Decayed counts behind one phrase (word trigram)."""

    __slots__ = ("born", "clean", "first", "hot_at", "last", "public", "self_repeats")

    def __init__(self, now: float = 0.0) -> None:
        self.first = 0.0
        self.self_repeats = 0.0
        self.last = now
        self.hot_at: float | None = None
        self.born = now
        self.clean = 0  # first contacts who used it before anyone reused it (see _first_reuse)
        self.public = False


class _Held:
    """A reply on hold. The heap orders (until, priority, seq, _Held) tuples.

    ``rule`` says why it is held now (``surge_hold``, ``budget_hour``, ``kill_switch``...):
    an operator change that lifts that reason wakes it (``wake_held``)."""

    __slots__ = ("held_at", "message", "rule")

    def __init__(self, message: Message, held_at: float, rule: str) -> None:
        self.message = message
        self.held_at = held_at
        self.rule = rule


_HeapEntry = tuple[float, int, int, _Held]


# ---------------------------------------------------------------------------
# State


class PolicyState:
    """Everything the policy has seen. Owned and fed by exactly one driver."""

    def __init__(self, config: PolicyConfig | None = None, controls: Controls | None = None,
                 *, sketches: TextSketches | None = None):
        self.config = config or PolicyConfig()
        self.controls = controls or Controls()
        self.reply_cost_micros = self.config.reply_cost_micros
        self.opt_out = frozenset(map(keyword_form, self.config.senders.opt_out_keywords))
        self.opt_in = frozenset(map(keyword_form, self.config.senders.opt_in_keywords))
        # a keyword wrapped in more than this many characters (quotes, spaces, punctuation,
        # an emoji) is a sentence, not a keyword: such texts skip the normalising
        self.keyword_max = max(map(len, self.opt_out | self.opt_in), default=0) + _KEYWORD_WRAP
        # No rule counts a sender's recent messages beyond this many, so no more are kept:
        # a raider who sends thousands costs as little memory as one who sends six.
        self.recent_cap = max(self.config.repeats.max_messages, _SCORE_REPEATS + 1, 2)
        self.seen_ids: dict[str, float] = {}
        self.senders: dict[str, _Sender] = {}
        # surge detection
        self.bin_start: float | None = None
        self.bin_new = 0
        self.bin_messages = 0
        self.baseline_new = 0.0
        self.baseline_messages = 0.0
        self.bins_seen = 0
        self.raid_mode = False
        self.raid_since: float | None = None
        self.calm_since: float | None = None
        self.raid_periods: list[tuple[float, float | None]] = []
        # share of recent new senders judged raiders (decayed counts)
        self.recent_new = 0.0
        self.recent_flagged = 0.0
        self.evidence_at = 0.0
        # the population's habit of reusing its own words (_habit_share), learnt while
        # calm: decayed counts of first contacts and of those who later reused theirs
        self.habit_first = 0.0
        self.habit_seen = 0  # first contacts ever learnt from
        self.habit_reusers = 0.0
        self.habit_window: float | None = None  # start of the current window
        self.habit_since: float | None = None  # start of the number's first window
        self.window_first = 0
        self.window_reusers = 0
        # near-duplicate templates
        self.templates: dict[int, _Template] = {}
        self.template_index: dict[str, list[int]] = {}
        self.text_cache: dict[str, _Text] = {}
        min_words = self.config.templates.min_words
        if sketches is None or sketches.min_words != min_words:
            sketches = TextSketches(min_words, max_texts=_CACHE_MAX)
        self.sketches = sketches
        self.fragments: dict[str, _Fragment] = {}
        # the fragments whose hot_at is set and not yet known to be stale: a text's
        # phrases are checked against this small table, not the whole of ``fragments``
        self.hot_fragments: dict[str, _Fragment] = {}

        self.next_template = 0
        # number blocks
        self.blocks: dict[str, deque[float]] = {}
        # deferred replies
        self.held: list[_HeapEntry] = []
        self.seq = 0
        # pacing
        self.spent_micros = 0
        self.recent_spend = RollingSpend()
        self.last_prune = -math.inf
        # no sender's last_seen is below this: _prune skips the scan of ``senders``
        # while nobody can be old enough to forget
        self.sender_floor = math.inf

    # Read-only views for drivers and reports -------------------------------

    @property
    def held_count(self) -> int:
        return len(self.held)

    def is_raid_mode(self) -> bool:
        return self.raid_mode


# ---------------------------------------------------------------------------
# Text sketches

# Look-alike letters from Cyrillic and Greek, read as the Latin letters they imitate.
_CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁӏαονρτικυεАЕОРСХІЈЅΑΒΕΗΙΚΜΝΟΡΤΧ",
    "aeopcyxijsdlaovptikueaeopcxijsabehikmnoptx",
)
# Zero-width and invisible formatting characters (not the ZWJ inside emoji sequences)
# inside a word: at a word's edge they are what copies from social networks carry.
_INVISIBLE = re.compile("(?<=\\w)[\u200b\u200c\u2060\ufeff\u180e\u2061-\u2064]+(?=\\w)")
_MIXED_SCRIPT = re.compile(
    "[A-Za-z][\u0370-\u03ff\u0400-\u04ff]|[\u0370-\u03ff\u0400-\u04ff][A-Za-z]"
)
_ANY_GREEK_CYRILLIC = re.compile("[\u0370-\u03ff\u0400-\u04ff]")
# byte -> itself for a-z, lowercase for A-Z, a space for anything else
_LETTERS = bytes(
    c + 32 if 65 <= c <= 90 else c if 97 <= c <= 122 else 32 for c in range(256)
)
_REPEATED = re.compile(r"(.)\1{2,}")
_PRUNE_EVERY_S = 6 * 3600.0
_INDEX_KEYS = 6
_DECAY_STEP_S = 60.0  # decayed counters are brought up to date at most once a minute
_MIN_VOTES = 2
_INDEX_FANOUT = 6
_CACHE_MAX = 200_000
_FLOOD_FACTOR = 3  # a sender who never pastes its own text again floods at 3x max_messages
_SCORE_REPEATS = 5  # a held reply's priority counts at most this many repeats
# A sender's first text sent again as its 2nd or 3rd message (_RETRY_MESSAGES), within
# _RETRY_S of it or while its reply is held, is that message again (a phone's retry, a
# person with no answer yet), not a paste: it makes a template hot only when
# _RETRY_SHARE of its senders do it.
_RETRY_MESSAGES = 3
_RETRY_S = 300.0
_RETRY_SHARE = 0.5
_RETRY, _FLOOD_ONLY, _PASTE = 0, 1, 2  # what a text sent again is (see _observe_text)
_LOOK_ALIKE = 2  # _normalise: look-alike letters inside Latin words
_DISGUISED_MIN = 2.0  # a template's disguised senders make it a raid's from 2...
_DISGUISED_SHARE = 0.1  # ...and a tenth of its senders
NO_TEMPLATE = -1

# Every rule a decision can name. The raid-evidence rules (``_suspicion``) also flag the
# sender; ``flagged_sender`` drops what such a sender sends afterwards.
RAID_RULES = ("raid_template", "raid_phrases", "repeat_flood", "number_block",
              "disguised_text", "flagged_sender")
RULES = frozenset((
    *RAID_RULES, "duplicate_id", "kill_switch", "short_code", "alphanumeric_sender",
    "opted_out", "opt_out", "opt_in", "blocklist", "sender_limit", "budget_total",
    "budget_hour", "already_held", "allowlist", "first_contact", "surge_hold", "released",
    "restored",
))


def normalise(text: str) -> list[str]:
    """Lowercase, read look-alike letters as Latin, strip accents, digits, punctuation,
    emoji and invisible characters, squeeze 'looool' to 'lool'; return the words."""
    return _normalise(text)[0]


def _normalise(text: str) -> tuple[list[str], int]:
    """``normalise`` and how the text hides itself in one pass over the text: 0 not at
    all, 1 by invisible characters inside a word (a copy from a social network may carry
    them by accident), _LOOK_ALIKE by look-alike letters inside Latin words (never typed)."""
    if text.isascii():
        data = text.encode("ascii")
        hidden = 0
    else:
        mixed = _ANY_GREEK_CYRILLIC.search(text) is not None and (
            _MIXED_SCRIPT.search(text) is not None
        )
        hidden = _LOOK_ALIKE if mixed else int(_INVISIBLE.search(text) is not None)
        if mixed:
            text = text.translate(_CONFUSABLES)
        data = unicodedata.normalize("NFKD", text).encode("ascii", "ignore")
    # bytes.translate keeps a-z, lowercases A-Z and blanks everything else, in C
    words = data.translate(_LETTERS).decode("ascii").split()
    joined = " ".join(words)
    if _REPEATED.search(joined) is not None:
        words = _REPEATED.sub(r"\1\1", joined).split()
    return words, hidden


def disguised(text: str) -> bool:
    """True when a text hides itself from filters: zero-width characters or Cyrillic or
    Greek look-alikes inside Latin words. People do not type these; evasion scripts do.
    (An invisible character at a word's edge is what copies from social networks carry.)"""
    if text.isascii():
        return False
    return bool(_INVISIBLE.search(text) or _MIXED_SCRIPT.search(text))


def text_features(state: PolicyState, text: str) -> _Text:
    """Normalised shingles of a text, cached: raids paste the same texts over and over."""
    cached = state.text_cache.get(text)
    if cached is not None:
        return cached
    features = _Text(state.sketches.get(text))
    if len(state.text_cache) >= _CACHE_MAX:
        state.text_cache.clear()
    state.text_cache[text] = features
    return features


def _template_for(state: PolicyState, features: _Text) -> int:
    """The id of the near-duplicate cluster ``text`` belongs to, creating one if needed.

    Texts are compared by the Jaccard similarity of their sets of character 4-grams
    (after ``normalise``), which survives typos, emoji and look-alike letters. Candidate
    clusters come from an index on each text's smallest 4-grams (a MinHash with a fixed
    order), so a lookup costs a few set intersections, not a scan. Texts shorter than
    ``min_words`` words never form templates (NO_TEMPLATE).
    """
    if features.template != NO_TEMPLATE and features.template in state.templates:
        return features.template
    shingles = features.grams
    if shingles is None:
        return NO_TEMPLATE
    # Index on the smallest letter-only 4-grams: 4-grams with a space are mostly the
    # edges of short common words and would crowd every bucket.
    keys = _index_keys(features, shingles)
    best, best_score = NO_TEMPLATE, state.config.templates.similarity
    templates = state.templates
    index = state.template_index
    # LSH voting: a cluster worth comparing shares several of the text's minimum
    # 4-grams; one shared value is usually a common word, not a near-duplicate.
    # Candidates are compared in first-seen order (ties go to the later one).
    # (a Counter counts in C, and keeps the first-seen order a dict would)
    votes = Counter(chain.from_iterable(filter(None, map(index.get, keys))))
    need = min(_MIN_VOTES, len(keys))
    n = len(shingles)
    for cid, count in votes.items():
        if count < need:
            continue
        tpl = templates.get(cid)
        if tpl is None:
            continue
        size = len(tpl.shingles)
        if size * best_score > n or n * best_score > size:
            continue  # sizes too different for the Jaccard to reach the bar
        common = len(shingles & tpl.shingles)
        score = common / (n + size - common)
        if score >= best_score:
            best, best_score = cid, score
    if best == NO_TEMPLATE:
        best = state.next_template
        state.next_template += 1
        templates[best] = _Template(shingles, features.seen)
        _file(index, keys, best)
    if features.disguised == _LOOK_ALIKE:
        templates[best].look_alike = True
    features.template = best
    return best


def _index_keys(features: _Text, shingles: frozenset[str]) -> list[str]:
    """The grams the template index files a text under (computed once per sketch): the
    first _INDEX_KEYS letter-only grams in order (the text is a-z and spaces), or the
    smallest gram of a text that has no letter-only one."""
    keys = features.keys
    if keys is None:
        keys = sorted(filter(str.isalpha, shingles))[:_INDEX_KEYS] or sorted(shingles)[:1]
        features.keys = features.sketch.keys = keys
    return keys


def _file(index: dict[str, list[int]], keys: list[str], template: int) -> None:
    for key in keys:
        bucket = index.get(key)
        if bucket is None:
            index[key] = [template]
        else:
            bucket.append(template)
            if len(bucket) > _INDEX_FANOUT:
                del bucket[0]


# ---------------------------------------------------------------------------
# Observation: update memory with a new message


def _sender_of(state: PolicyState, number: str, now: float) -> _Sender:
    """The sender's memory, created (first seen ``now``) if the policy has none."""
    sender = state.senders.get(number)
    return sender if sender is not None else _new_sender(state, number, now)


def _new_sender(state: PolicyState, number: str, now: float) -> _Sender:
    sender = state.senders[number] = _Sender(now, number)
    if now < state.sender_floor:
        state.sender_floor = now  # _prune relies on it: no last_seen is below the floor
    return sender


def _observe(state: PolicyState, msg: Message, now: float) -> _Sender:
    """Count the message: sender history, surge windows, number blocks."""
    cfg = state.config
    sender = state.senders.get(msg.sender)
    is_new = sender is None
    if sender is None:
        sender = _new_sender(state, msg.sender, now)
        sender.first_key = _text_key(msg.body)
    elif now < state.sender_floor:  # a driver whose clock went back
        state.sender_floor = now
    sender.count += 1
    sender.last_seen = now
    recent = sender.recent
    horizon = now - cfg.repeats.window_s
    if recent and recent[0] < horizon:  # forget the times that left the window
        first = 1
        while first < len(recent) and recent[first] < horizon:
            first += 1
        recent = recent[first:]
    if len(recent) >= state.recent_cap:
        recent = recent[len(recent) - state.recent_cap + 1:]
    sender.recent = (*recent, now)

    surge = cfg.surge
    if surge.enabled:
        start = state.bin_start
        if start is None or now - start >= surge.window_s:  # else still in the same window
            _advance_surge(state, now)
        state.bin_messages += 1
        if is_new:
            state.bin_new += 1
            _decay_evidence(state, now)
            state.recent_new += 1.0
        if not state.raid_mode:
            _check_surge(state, now)

    if is_new and cfg.number_blocks.enabled and sender.e164:
        block = msg.sender[: -cfg.number_blocks.strip_digits]
        times = state.blocks.get(block)
        if times is None:
            times = state.blocks[block] = deque()
        times.append(now)
        window = now - cfg.number_blocks.window_s
        while times and times[0] < window:
            times.popleft()

    if now - state.last_prune >= _PRUNE_EVERY_S:
        _prune(state, now)
    return sender


def _text_key(body: str) -> int:
    """A short, deterministic key of a text, to tell a text sent again from another."""
    return zlib.crc32(body.encode("utf-8", "surrogatepass"))


def _observe_text(state: PolicyState, msg: Message, sender: _Sender, now: float) -> _Text:
    """Classify and count the text. Skipped for flagged senders: their texts change no
    decision, and in a raid most messages come from them."""
    cfg = state.config
    features = text_features(state, msg.body)
    features.seen = now
    # A first text sent again at once, or while its reply is held, is the same message
    # sent again (a phone's retry, a person with no answer yet), not a paste (_RETRY). Sent
    # yet more while held, it is that sender's own flood, still not the text's heat
    # (_FLOOD_ONLY): people left waiting press send again and again.
    repeats = _PASTE
    if sender.count > 1 and _first_text_again(sender, msg.body, now):
        repeats = (_RETRY if sender.count <= _RETRY_MESSAGES
                   else _FLOOD_ONLY if sender.held else _PASTE)
    template = _template_for(state, features) if cfg.templates.enabled else NO_TEMPLATE
    if (template == NO_TEMPLATE and sender.count > _RETRY_MESSAGES
            and NO_TEMPLATE not in sender.repeated and _text_key(msg.body) == sender.first_key):
        # A text too short for a template ("🖕", "Connasse"), sent yet again: its sender
        # pastes its own text as a templated one's does (repeat_flood's sign). Before, only
        # the 12-message rule caught a crowd pasting one emoji five times while held.
        sender.repeated = (*sender.repeated, NO_TEMPLATE)
    if cfg.fragments.enabled:
        # (before _count_template adds it: whether the sender sent this text before)
        again = template != NO_TEMPLATE and template in sender.templates
        _count_fragments(state, features, sender, now, repeats == _PASTE, again)
    if template != NO_TEMPLATE:
        _count_template(state, template, sender, now, repeats, features.disguised)
    return features


def _first_text_again(sender: _Sender, body: str, now: float) -> bool:
    """Whether ``body`` is the sender's first text sent again while it waits for an answer:
    within _RETRY_S of it, or while its reply is held."""
    return ((sender.held or now - sender.first_seen <= _RETRY_S)
            and _text_key(body) == sender.first_key)


def _count_retry(state: PolicyState, msg: Message, sender: _Sender, now: float) -> None:
    """Count a flagged sender's first text sent again at once in its template's retries
    (its other texts change nothing): a template hot because half its senders send every
    text twice must not cool as the raid's own senders, dropped, stop being counted."""
    if _first_text_again(sender, msg.body, now):  # (a flagged sender is never held)
        features = state.text_cache.get(msg.body)
        if features is not None and features.template in state.templates:
            _count_template(state, features.template, sender, now, _RETRY, False)


def _count_fragments(state: PolicyState, features: _Text, sender: _Sender, now: float,
                     repeats: bool, again: bool) -> None:
    """Count a text's phrases: as used by one more first contact, or as reused by this
    sender (``repeats``: not its first text sent again at once; ``again``: a text of a
    template this sender sent before)."""
    cfg = state.config.fragments
    frags = features.phrases
    if not frags:
        return
    first = sender.count == 1
    own = sender.frags
    half = False
    if repeats and not first and sender.replies:  # an answered sender writes again
        if again or frags <= own:
            # One of its texts again (a text of one of its templates, or made only of its
            # earlier phrases) counts half for its phrases, and the rest if it does so
            # once more: people who pick their words from the same few texts (or a
            # generator drawing them from a short list) do that now and then by chance; a
            # raid's members paste theirs over and over, or while held.
            half = True
        elif _writing_on(sender):
            repeats = False
    table = state.fragments
    decay_rate = math.log(2) / cfg.halflife_s
    counted: list[str] = []  # phrases this sender now repeats for the first time
    for h in frags:
        frag = table.get(h)
        if frag is None:
            if not first:
                continue  # only phrases seen in some first contact can become hot
            frag = table[h] = _Fragment(now)
        elif now - frag.last >= _DECAY_STEP_S:
            factor = math.exp(-(now - frag.last) * decay_rate)
            frag.first *= factor
            frag.self_repeats *= factor
            frag.last = now
        if first:
            frag.first += 1.0
            if frag.clean >= 0:
                frag.clean += 1
            if (frag.hot_at is not None
                    and _habit_share(state, cfg.self_repeat_share) is not None
                    and frag.self_repeats < _reuse_need(state, cfg.self_repeat_share,
                                                        frag.first)):
                # hot before this number's habit was known, and within it
                frag.hot_at = None
                state.hot_fragments.pop(h, None)
        elif repeats and h in own:
            # A sender counts once per phrase, however often it pastes it (the marks in its
            # set of phrases say it was counted, in full or half): a few raiders flooding a
            # phrase that thousands of genuine people use cannot make it look like a raid's.
            half_mark = _REPEATED_MARK + h
            whole_mark = _REPEATED_MARK + half_mark
            if whole_mark in own:
                continue
            counted.append(whole_mark if not half or half_mark in own else half_mark)
            if half_mark in own:  # counted half before: the rest now
                frag.self_repeats += 1.0 - _HALF
            else:
                _first_reuse(frag, now - frag.born, cfg)
                frag.self_repeats += _HALF if half else 1.0
            if (
                not frag.public
                and frag.first >= cfg.hot_senders
                and frag.self_repeats >= cfg.min_self_repeats
                and frag.self_repeats >= _reuse_need(state, cfg.self_repeat_share, frag.first)
            ):
                frag.hot_at = now
                state.hot_fragments[h] = frag
    if counted:
        _count_reuser(state, sender, now)
    if len(own) < 64:
        if not own:
            sender.frags_at = now
        sender.frags = own | frags if not counted else own | frags | frozenset(counted)


# The habit (see _habit_share): counted in windows of an hour; a window is added to what
# has been learnt unless its reusers jump well above what the habit so far predicts. The
# prior (first contacts who reuse nothing) keeps a few early reusers from making a habit.
_HABIT_WINDOW_S = 3600.0
_HABIT_PRIOR = 100.0
_HABIT_LEARNT = 150.0  # first contacts counted before a window's jump can be refused
_HABIT_JUMP = 2.0
_HABIT_Z = 2.5  # a template's or phrase's reuse must exceed the habit by this many sigmas
_HABIT_RAIDED = 0.5  # nothing is learnt while raid rules flag this share of new senders
_NO_HABIT = 0.5  # a habit below half a rule's bar is no habit: the bar stays as it is


def _roll_habit(state: PolicyState, now: float) -> None:
    """Close the habit's current window when ``now`` is past it, and learn from it."""
    start = state.habit_window
    if start is None:
        state.habit_window = now - now % _HABIT_WINDOW_S
        if state.habit_since is None:
            state.habit_since = state.habit_window
        return
    if now - start < _HABIT_WINDOW_S:
        return  # (also when a driver's clock went back)
    cfg = state.config.habit
    new_start = now - now % _HABIT_WINDOW_S
    factor = math.exp(-(new_start - start) * math.log(2) / cfg.halflife_s)
    state.habit_first *= factor
    state.habit_reusers *= factor
    first, reusers = state.window_first, state.window_reusers
    expected = first * _habit_ratio(state)
    if _raid_evidence(state, now) < _HABIT_RAIDED and (
            now - (state.habit_since or 0.0) < cfg.learn_s or state.habit_first < _HABIT_LEARNT
            or reusers <= _HABIT_JUMP * expected + 2.0 * math.sqrt(expected) + 2.0):
        state.habit_first += first
        state.habit_reusers += reusers
        state.habit_seen += first
    state.window_first = state.window_reusers = 0
    state.habit_window = new_start


def number_since(state: PolicyState, at: float) -> None:
    """Tell the policy that its number has received messages since ``at``.

    For a driver that rebuilds the policy's memory from a recent window of stored traffic
    (``responder.recovery``): the habit learns from everything in its number's first day
    (``habit.learn``), and that day is long past, not the start of the window replayed."""
    start = at - at % _HABIT_WINDOW_S
    state.habit_since = start if state.habit_since is None else min(state.habit_since, start)


def _habit_ratio(state: PolicyState) -> float:
    # (the prior fades as the first _HABIT_PRIOR first contacts are counted)
    prior = max(0.0, _HABIT_PRIOR - state.habit_seen)
    return state.habit_reusers / (state.habit_first + prior) if state.habit_first else 0.0


def _count_first(state: PolicyState, sender: _Sender, now: float) -> None:
    """A first contact that no rule flagged, while calm: one more in the habit's count."""
    if state.config.habit.enabled:
        _roll_habit(state, now)
        state.window_first += 1
        sender.habit = _HABIT_COUNTED


def _count_reuser(state: PolicyState, sender: _Sender, now: float) -> None:
    """The sender reuses its own words for the first time (a text or a phrase again)."""
    if sender.habit == _HABIT_COUNTED:
        sender.habit = _HABIT_REUSED
        if not state.raid_mode:
            _roll_habit(state, now)
            state.window_reusers += 1


def _habit_share(state: PolicyState, bar: float) -> float | None:
    """The share of this number's first contacts who later send a text or a phrase of
    theirs again, learnt while calm; None while it is under half of ``bar``.

    Some populations reuse their own words as a habit: people who send the same support
    text again hours later, or who write four or five texts from the same few sentences
    (a generator that builds every text from three short lists does that). A fixed bar
    (a tenth of a template's or a phrase's senders) made such words raid templates and
    phrases, and dropped most of the people who wrote them. The habit is learnt hour by
    hour; after ``learn_s``, an hour whose reusers jump far above it is not learnt from
    (a raid's onset), as the surge baseline ignores abnormal windows; nor is an hour in
    raid mode, or one where raid rules flag half the new senders. ``[habit] enabled =
    false`` gives the fixed bars back exactly."""
    if not state.config.habit.enabled:
        return None
    share = _habit_ratio(state)
    return share if share >= _NO_HABIT * bar else None


def _reuse_need(state: PolicyState, bar: float, first: float) -> float:
    """How many of ``first`` senders must reuse a template or phrase for it to be a raid's:
    ``bar`` of them, and clearly more than this number's habit (_habit_share) when it has
    one."""
    share = _habit_share(state, bar)
    if share is None:
        return bar * first
    expected = share * first
    return max(bar * first, expected + _HABIT_Z * math.sqrt(expected))


def _writing_on(sender: _Sender) -> bool:
    """Whether an answered sender's new text (not one of a template it sent before, nor
    made only of its own earlier phrases) is a person writing on after its answer, not
    reuse of its phrases: its 2nd or 3rd message (_BURST_MESSAGES), within the repeats
    window (an hour) of its previous one.

    People who, once answered, write two or three texts in a row (a testimony, then
    another incident; a story in parts) build them from the same stock phrases ("Je
    voulais juste dire..."): counted as reuse, those phrases went hot on a steady plateau
    of such people, and the newcomers who wrote them were dropped. A raid's members reuse
    their pieces while their replies are held, as they keep sending (a 4th message and
    more), when they come back to them later, or when they paste a text again.
    """
    return sender.count <= _BURST_MESSAGES and len(sender.recent) >= 2


def _fragments_hot(state: PolicyState, features: _Text, now: float) -> bool:
    """Most of the text is made of hot raid phrases (one shared phrase is not enough: a
    raid may borrow the words genuine senders use)."""
    cfg = state.config.fragments
    frags = features.phrases
    if len(frags) < cfg.min_hot:
        return False
    hot = 0
    hot_fragments = state.hot_fragments
    if hot_fragments:
        # Only fragments that ever went hot can count: intersect with that small table.
        for h in hot_fragments.keys() & frags:
            hot_at = hot_fragments[h].hot_at
            if hot_at is not None and now - hot_at <= cfg.hot_ttl_s:
                hot += 1
    return hot >= cfg.min_hot and hot >= cfg.hot_share * len(frags)


_SENDER_TEMPLATES = 16  # templates remembered per sender
_COOL_SHARE = 0.5  # a hot template cools when its repeaters fall under half the bar
_BURST_MESSAGES = 3  # a sender's first messages that may be one person writing on
_HALF = 0.5  # what an answered sender's text sent again first counts for its phrases
_HABIT_COUNTED, _HABIT_REUSED = 1, 2  # _Sender.habit
_REPEATED_MARK = "\x00"  # prefix, in a sender's set of phrases, of those counted as repeated


def _count_template(state: PolicyState, template: int, sender: _Sender, now: float,
                    repeats: int, disguised: int) -> None:
    """Count a sender's message in its template: as one more distinct sender the first time
    this sender sends it, as one more *repeater* the first time it sends it again.

    Only a sender pasting its own text again is raid behaviour. A genuine person whose
    second message happens to match a common phrase ("je voulais savoir si...") is one
    more distinct sender of it, not a repeat; and a raider who pastes a text fifty times
    counts once, so a handful of raiders cannot make a phrase that thousands of genuine
    people use look like a raid template.
    """
    cfg = state.config.templates
    tpl = state.templates[template]
    born = tpl.born
    if born is None:
        born = tpl.born = now
    if now - tpl.last >= _DECAY_STEP_S:
        factor = math.exp(-(now - tpl.last) * math.log(2) / cfg.halflife_s)
        tpl.first *= factor
        tpl.repeats *= factor
        tpl.retries *= factor
        tpl.disguised *= factor
        tpl.last = now
    sent = sender.templates
    if template not in sent:
        tpl.first += 1.0
        if disguised:
            tpl.disguised += 1.0
        if tpl.clean >= 0:
            tpl.clean += 1
        if len(sent) < _SENDER_TEMPLATES:
            sender.templates = (*sent, template)
    elif repeats == _RETRY:
        if sender.count == 2:
            tpl.retries += 1.0
    elif template not in sender.repeated:
        sender.repeated = (*sender.repeated, template)
        if repeats == _PASTE:
            tpl.repeats += 1.0
            _first_reuse(tpl, now - born, cfg)
            _count_reuser(state, sender, now)
    # (disguise is evidence only while the evasion defence is on: switched off, a
    # look-alike copy no longer makes its template a raid's either)
    hidden = state.config.evasion.enabled and _disguised(tpl)
    if tpl.public and not hidden:
        return  # raiders who paste a public phrase are judged by what else they do
    # Raid behaviour: many distinct senders, and some of them paste it again or
    # disguise it with characters nobody types.
    need = _reuse_need(state, cfg.min_repeat_share, tpl.first)
    if tpl.first >= cfg.hot_senders and (
        tpl.repeats >= need or hidden
        or tpl.repeats + tpl.retries >= _RETRY_SHARE * tpl.first
    ):
        tpl.hot_at = now
    elif (tpl.hot_at is not None and not hidden
          and tpl.repeats < _COOL_SHARE * need
          and tpl.repeats + tpl.retries < _COOL_SHARE * _RETRY_SHARE * tpl.first):
        tpl.hot_at = None  # diluted by senders who never repeat it: a genuine phrase


def _disguised(tpl: _Template) -> bool:
    """Whether enough of a template's senders hid their copies for it to be a raid's.

    One copy with look-alike letters is enough: nobody types a Cyrillic "а" inside a French
    word. One with zero-width characters is not: a text copied from a social network may
    carry them, and a fifth red team's TV surge lost a quarter of its genuine senders when
    one stray copy in a hundred of a pasted slogan made the whole text a raid template.
    Scripts that hide copies that way do it as a rule, not once in a hundred.
    """
    return tpl.look_alike or (tpl.disguised >= _DISGUISED_MIN
                              and tpl.disguised >= _DISGUISED_SHARE * tpl.first)


def _first_reuse(item: _Template | _Fragment, age_s: float,
                 cfg: TemplatesConfig | FragmentsConfig) -> None:
    """Decide, at a text's or phrase's first reuse, whether it is public (a quote from the
    news, a TV catchphrase, the words people use to write to such a number) rather than a
    raid's: ``cfg.public_senders`` distinct people sent it over ``cfg.public_after_s``
    seconds (``age_s`` since its first) before anyone sent it again. Later reuses change
    nothing (``clean`` is -1 once decided).

    A raid's template is pasted again within minutes of its first wave; a text that dozens
    of strangers sent, over hours, without one of them repeating it, is what the public
    writes. Raiders who take it up later cannot make it hot: it would drop every genuine
    sender who writes it (they are caught by what else they do: their own repeated texts,
    floods, number blocks).
    """
    if item.clean >= 0:
        item.public = 0 < cfg.public_senders <= item.clean and age_s >= cfg.public_after_s
        item.clean = -1


def _template_hot(state: PolicyState, template: int, now: float) -> bool:
    tpl = state.templates.get(template)
    return (
        tpl is not None
        and tpl.hot_at is not None
        and now - tpl.hot_at <= state.config.templates.hot_ttl_s
    )


def _template_echo(state: PolicyState, template: int) -> bool:
    """Weaker evidence: some other sender recently sent a near-identical text."""
    tpl = state.templates.get(template)
    return tpl is not None and tpl.first + tpl.repeats >= 2.0


def _block_hot(state: PolicyState, number: str, sender: _Sender) -> bool:
    cfg = state.config.number_blocks
    if not cfg.enabled or not sender.e164:
        return False
    times = state.blocks.get(number[: -cfg.strip_digits])
    return times is not None and len(times) >= cfg.hot_senders


def is_e164(sender: str) -> bool:
    """Whether a sender is an E.164 phone number (the only kind a reply can go to)."""
    # isascii: str.isdigit() also takes other scripts' digits ("+٣٣٦...", full-width),
    # which no provider delivers to
    return len(sender) >= 8 and sender[0] == "+" and sender[1:].isdigit() and sender.isascii()


SHORT_CODE_MAX_DIGITS = 8  # short codes run from 3 to 8 digits (sim.trace reads the same)


def _is_short_code(sender: str) -> bool:
    digits = sender.lstrip("+")
    return digits.isdigit() and digits.isascii() and len(digits) <= SHORT_CODE_MAX_DIGITS


# ---------------------------------------------------------------------------
# Surge detection


def _advance_surge(state: PolicyState, now: float) -> None:
    cfg = state.config.surge
    if state.bin_start is None:
        state.bin_start = now - (now % cfg.window_s)
        return
    elapsed = now - state.bin_start
    if elapsed < cfg.window_s:
        return
    closed = int(elapsed // cfg.window_s)
    _close_bin(state, state.bin_new, state.bin_messages, now)
    if closed > 1:
        # Empty windows in between: they decay the baseline and count as calm.
        alpha = _alpha(state)
        if not state.raid_mode:
            keep = (1.0 - alpha) ** (closed - 1)
            state.baseline_new *= keep
            state.baseline_messages *= keep
            state.bins_seen += closed - 1
        else:
            # Each counts as if it had closed on its own: raid mode ends at the end of the
            # window where the calm has lasted calm_s, however late the next message or
            # tick comes (before, a calm that began with this silence started counting at
            # its end: raid mode outlived hours of silence, until a message came later).
            first_end = state.bin_start + 2 * cfg.window_s
            last_end = state.bin_start + closed * cfg.window_s
            _calm_tick(state, first_end, abnormal=False)
            if state.raid_mode and state.calm_since is not None:
                steps = math.ceil((state.calm_since + cfg.calm_s - first_end) / cfg.window_s)
                _calm_tick(state, min(last_end, first_end + max(steps, 0) * cfg.window_s),
                           abnormal=False)
    state.bin_start += closed * cfg.window_s
    state.bin_new = 0
    state.bin_messages = 0


def _alpha(state: PolicyState) -> float:
    cfg = state.config.surge
    return 1.0 - math.pow(0.5, cfg.window_s / cfg.baseline_halflife_s)


def _thresholds(state: PolicyState) -> tuple[float, float]:
    cfg = state.config.surge
    new_limit = max(float(cfg.floor_new_senders), cfg.factor * state.baseline_new)
    msg_limit = max(3.0 * cfg.floor_new_senders, cfg.factor * state.baseline_messages)
    return new_limit, msg_limit


def _close_bin(state: PolicyState, new: int, messages: int, now: float) -> None:
    new_limit, msg_limit = _thresholds(state)
    abnormal = new > new_limit or messages > msg_limit
    if not state.raid_mode and not abnormal:
        alpha = _alpha(state)
        state.baseline_new += alpha * (new - state.baseline_new)
        state.baseline_messages += alpha * (messages - state.baseline_messages)
        state.bins_seen += 1
    assert state.bin_start is not None
    _calm_tick(state, state.bin_start + state.config.surge.window_s, abnormal=abnormal)


def _calm_tick(state: PolicyState, at: float, *, abnormal: bool) -> None:
    if not state.raid_mode:
        return
    if abnormal:
        state.calm_since = None
        return
    if state.calm_since is None:
        state.calm_since = at
    if at - state.calm_since >= state.config.surge.calm_s:
        state.raid_mode = False
        state.raid_periods[-1] = (state.raid_periods[-1][0], at)
        state.raid_since = None
        state.calm_since = None


def _check_surge(state: PolicyState, now: float) -> None:
    if state.raid_mode:
        return
    new_limit, msg_limit = _thresholds(state)
    if state.bin_new > new_limit or state.bin_messages > msg_limit:
        state.raid_mode = True
        state.raid_since = now
        state.calm_since = None
        state.raid_periods.append((now, None))


_EVIDENCE_HALFLIFE_S = 3600.0


def _decay_evidence(state: PolicyState, now: float) -> None:
    if now != state.evidence_at:
        factor = math.exp(-(now - state.evidence_at) * math.log(2) / _EVIDENCE_HALFLIFE_S)
        state.recent_new *= factor
        state.recent_flagged *= factor
        state.evidence_at = now


def _raid_evidence(state: PolicyState, now: float) -> float:
    """Share of the last hour's new senders that a raid rule flagged."""
    _decay_evidence(state, now)
    return state.recent_flagged / state.recent_new if state.recent_new >= 1.0 else 0.0


def _flag(state: PolicyState, sender: _Sender, rule: str, now: float) -> None:
    if sender.flag is None:
        sender.flag = rule
        _decay_evidence(state, now)
        state.recent_flagged += 1.0


def tick(state: PolicyState, *, now: float) -> None:
    """Let time pass without a message (closes windows, may end raid mode)."""
    if state.config.surge.enabled and state.bin_start is not None:
        _advance_surge(state, now)


# ---------------------------------------------------------------------------
# Decisions


def _suspicion(state: PolicyState, msg: Message, sender: _Sender, features: _Text,
               now: float) -> str | None:
    """Name of the raid-evidence rule that fires for this message, if any."""
    if sender.flag is not None:
        return "flagged_sender"
    cfg = state.config
    if cfg.templates.enabled:
        template = features.template
        tpl = state.templates.get(template)
        # _template_hot, inlined: this runs for every message and every held re-check
        if tpl is not None and tpl.hot_at is not None and (
            now - tpl.hot_at <= cfg.templates.hot_ttl_s
        ):
            return "raid_template"
    else:
        template = NO_TEMPLATE
    if cfg.fragments.enabled and _fragments_hot(state, features, now):
        return "raid_phrases"
    repeats = cfg.repeats
    if (repeats.enabled and not sender.replies and len(sender.recent) >= repeats.max_messages
            and _floods(sender, repeats.max_messages)):
        return "repeat_flood"
    if (
        cfg.number_blocks.enabled
        and _block_hot(state, msg.sender, sender)
        and (_template_echo(state, template) or len(sender.recent) >= 2)
    ):
        return "number_block"
    if (
        cfg.evasion.enabled
        and features.disguised
        and (state.raid_mode or _template_echo(state, template) or len(sender.recent) >= 2)
    ):
        return "disguised_text"
    return None


def _floods(sender: _Sender, max_messages: int) -> bool:
    """Whether a sender who sent ``max_messages`` or more, unanswered, is flooding.

    A person left waiting (a held reply) writes again, "allô ?", "tu réponds pas ?", each
    time in new words; a raid script pastes its text again. So it is a flood when the
    sender has sent one of its templates again, or has gone on far longer than people do.
    """
    return bool(sender.repeated) or sender.count >= _FLOOD_FACTOR * max_messages


def _score(state: PolicyState, msg: Message, sender: _Sender, template: int) -> int:
    """Release priority of a held reply: lower is released first."""
    score = min(len(sender.recent) - 1, _SCORE_REPEATS)
    if _template_echo(state, template):
        score += 2
    cfg = state.config.number_blocks
    if cfg.enabled and sender.e164:
        times = state.blocks.get(msg.sender[: -cfg.strip_digits])
        if times is not None and len(times) >= 2:
            score += 2
    return score


def _sender_rules(state: PolicyState, msg: Message, sender: _Sender, now: float) -> Decision | None:
    cfg = state.config
    if state.controls.kill_switch:
        return Decision.drop("kill_switch")
    if not sender.e164:
        if _is_short_code(msg.sender):
            if not cfg.senders.reply_to_short_codes:
                return Decision.drop("short_code")
        elif not cfg.senders.reply_to_alphanumeric:
            return Decision.drop("alphanumeric_sender")
    if sender.opted_out:
        return Decision.drop("opted_out")
    blocked = state.controls.blocked
    if blocked and _matches_prefix(msg.sender, blocked):
        return Decision.drop("blocklist")
    limit = cfg.sender_limit
    if limit.enabled and sender.replies:
        horizon = now - limit.window_s
        replies = sender.replies
        if min(replies) <= horizon:
            kept = [i for i, t in enumerate(replies) if t > horizon]
            replies = sender.replies = tuple(replies[i] for i in kept)
            sender.reply_ids = tuple(sender.reply_ids[i] for i in kept)
        if len(replies) >= limit.replies:
            return Decision.drop("sender_limit")
    return None


def _budget_rule(state: PolicyState, now: float, ahead: int = 0) -> Decision | None:
    """Drop past the total cap; past the hourly cap, defer until the rolling hour has room
    for this reply and for the ``ahead`` replies already waiting before it (their turns
    come first; past an hour's worth, an hour from now)."""
    budget = state.config.budget
    if not budget.enabled:
        return None
    cost = state.reply_cost_micros
    if budget.total_micros is not None and state.spent_micros + cost > budget.total_micros:
        return Decision.drop("budget_total")
    if budget.per_hour_micros is not None:
        room = state.recent_spend.room_at(now, budget.per_hour_micros, cost * (ahead + 1))
        if room > now:
            return Decision.defer("budget_hour", room)
    return None


def _hold(state: PolicyState, msg: Message, sender: _Sender, decision: Decision,
          now: float) -> Decision:
    state.seq += 1
    assert decision.until is not None
    heapq.heappush(state.held, (decision.until, decision.priority, state.seq,
                                _Held(msg, now, decision.rule)))
    sender.held = True
    return decision


def _on_grid(state: PolicyState, t: float) -> float:
    """Round a hold deadline up to the surge window grid, so held replies are re-examined
    in batches (one timer wake-up per window, not one per message)."""
    step = state.config.surge.window_s
    return math.ceil(t / step) * step


_KEYWORD_WRAP = 12  # characters around a keyword still read as the keyword alone


def keyword_form(text: str) -> str:
    """``text`` as opt-out and opt-in keywords are compared: compatibility forms folded
    (full-width ＳＴＯＰ), accents dropped (ARRÊT, arrête's ê, a decomposed Ê), upper case,
    and whatever is not a letter or a digit stripped from both ends: spaces of any kind,
    punctuation (« Stop ! », "STOP", stop,, Stop…, (stop)) and emoji (STOP 🛑). People
    write STOP so; a keyword missed is a reply to someone who asked for none."""
    if text.isascii():  # most texts: nothing to fold
        bare = text
    else:
        folded = unicodedata.normalize("NFKD", text)
        bare = "".join(ch for ch in folded if not unicodedata.combining(ch))
    start, end = 0, len(bare)
    while start < end and not bare[start].isalnum():
        start += 1
    while end > start and not bare[end - 1].isalnum():
        end -= 1
    return bare[start:end].upper()


def decide(state: PolicyState, message: Message, *, now: float) -> Decision:
    """Decide one inbound message: reply now, defer (held), or drop with a reason."""
    cfg = state.config
    if cfg.dedup:
        if message.message_id in state.seen_ids:
            return Decision.drop("duplicate_id")
        state.seen_ids[message.message_id] = now
    sender = _observe(state, message, now)

    if len(message.body) <= state.keyword_max:  # else no keyword, and normalising costs
        keyword = keyword_form(message.body)
        if keyword in state.opt_out:
            sender.opted_out = True
            return Decision.drop("opt_out")
        if keyword in state.opt_in and sender.opted_out:
            sender.opted_out = False
            return Decision.drop("opt_in")

    hard = _sender_rules(state, message, sender, now)
    if hard is not None:
        if hard.rule == "sender_limit":
            # A sender we answered who pastes the same text again is raid evidence.
            _observe_text(state, message, sender, now)
        return hard
    # An allow-listed number skips the raid rules, its flag too: allow-listing is what an
    # operator does for a person a raid rule dropped by mistake (before, a number flagged
    # once stayed dropped as flagged_sender in the running process, and was answered
    # only after a restart, whose replay saw the allow list before any flag).
    allowed = bool(state.controls.allowed) and state.controls.is_allowed(message.sender)
    if sender.flag is not None and not allowed:
        if sender.count == 2 and cfg.templates.enabled:
            _count_retry(state, message, sender, now)
        return Decision.drop("flagged_sender")
    features = _observe_text(state, message, sender, now)
    template = features.template if cfg.templates.enabled else NO_TEMPLATE
    if sender.held:
        return Decision.drop("already_held")
    if allowed:
        return _budget_or(state, message, sender, now, Decision.reply("allowlist"))

    rule = _suspicion(state, message, sender, features, now)
    if rule is not None:
        _flag(state, sender, rule, now)
        return Decision.drop(rule)
    if sender.count == 1 and not state.raid_mode:
        _count_first(state, sender, now)

    if cfg.surge.enabled and state.raid_mode:
        priority = _score(state, message, sender, template)
        until = _on_grid(state, now + cfg.surge.observe_s)
        return _hold(state, message, sender, Decision.defer("surge_hold", until, priority), now)
    return _budget_or(state, message, sender, now, Decision.reply("first_contact"))


def _budget_or(state: PolicyState, msg: Message, sender: _Sender, now: float,
               decision: Decision) -> Decision:
    budget = _budget_rule(state, now)
    if budget is None:
        return decision
    if budget.action is Action.DEFER:
        return _hold(state, msg, sender, budget, now)
    return budget


def next_deadline(state: PolicyState) -> float | None:
    """When the driver must call ``release_due`` next, or None if nothing is held."""
    if not state.held:
        return None
    return state.held[0][0]


def release_due(state: PolicyState, *, now: float,
                ledger: Ledger | None = None) -> list[Released]:
    """Decide again every held reply whose time has come.

    A held reply is released (REPLY) when raid mode is over or it has waited
    ``max_hold_s``; it is dropped if the evidence gathered meanwhile says raid;
    otherwise it is held again until the next window. With ``ledger`` (``release``),
    each reply is reserved there before the next held one is decided.
    """
    cfg = state.config
    surge = cfg.surge
    tick(state, now=now)
    out: list[Released] = []
    again: list[tuple[float, int, _Held]] = []
    held = state.held
    senders = state.senders
    allow_list = state.controls.allowed
    next_look = _on_grid(state, now + surge.observe_s)
    evidence: float | None = None  # _raid_evidence(state, now), until a sender is flagged
    waiting = 0  # held replies of this batch deferred for the hourly budget so far
    while held and held[0][0] <= now:
        _until, priority, _seq, item = heapq.heappop(held)
        msg = item.message
        sender = _sender_of(state, msg.sender, item.held_at)
        sender.held = False
        if state.controls.kill_switch:
            # The switch pauses replies; it does not decide held ones for good (a drop
            # would be final): they stay held, looked at again each observe window, and
            # are woken when it goes off (wake_held).
            item.rule = "kill_switch"
            again.append((next_look, priority, item))
            continue
        hard = _sender_rules(state, msg, sender, now)
        if hard is not None:
            out.append(Released(msg, hard))
            continue
        features = text_features(state, msg.body)
        template = _template_for(state, features) if cfg.templates.enabled else NO_TEMPLATE
        allowed = bool(allow_list) and _matches_prefix(msg.sender, allow_list)
        rule = None if allowed else _suspicion(state, msg, sender, features, now)
        # Count everything the sender sent while held, not only the last window.
        if (rule is None and not allowed and cfg.repeats.enabled and not sender.replies
                and sender.count >= cfg.repeats.max_messages
                and _floods(sender, cfg.repeats.max_messages)):
            rule = "repeat_flood"
        if rule is not None:
            _flag(state, sender, rule, now)
            evidence = None
            out.append(Released(msg, Decision.drop(rule)))
            continue
        if state.raid_mode and now - item.held_at < surge.max_hold_s and not allowed:
            if evidence is None:
                evidence = _raid_evidence(state, now)
            if evidence >= surge.genuine_below:
                until = min(next_look, item.held_at + surge.max_hold_s)
                item.rule = "surge_hold"
                again.append((until, _score(state, msg, sender, template), item))
                continue
        # A held reply that waits for the hourly budget is looked at again when its turn
        # can come, behind those of this batch already waiting: before, every one of them
        # was looked at again each time one reply's room came (thousands, a dozen times an
        # hour, under a low hourly cap).
        budget = _budget_rule(state, now, waiting)
        if budget is not None:
            if budget.action is Action.DEFER:
                assert budget.until is not None
                item.rule = budget.rule
                again.append((budget.until, 0, item))
                waiting += 1
                continue
            out.append(Released(msg, budget))
            continue
        decision = Decision.reply("released")
        if ledger is not None:  # reserved at once: the next one's pacing counts it
            decision = _commit(state, ledger, msg, decision, now)
        out.append(Released(msg, decision))
    for until, priority, item in again:
        state.seq += 1
        held_by = senders.get(item.message.sender)
        if held_by is not None:
            held_by.held = True
        heapq.heappush(held, (until, priority, state.seq, item))
    return out


def wake_held(state: PolicyState, rule: str, *, now: float) -> int:
    """Make every reply held for ``rule`` due at ``now`` (the operator lifted that reason:
    the kill switch went off, the hourly cap was raised); how many. ``release_due``
    then decides them again on every rule, so one still held for another reason waits."""
    return _wake(state, lambda item: item.rule == rule, now)


def wake_senders(state: PolicyState, patterns: set[str], *, now: float) -> int:
    """Make the held replies of the senders that ``patterns`` (numbers or prefixes) match
    due at ``now`` (the operator allow-listed them: the allow list skips the surge hold,
    so their replies need not wait for their next look); how many."""
    return _wake(state, lambda item: _matches_prefix(item.message.sender, patterns), now)


def _wake(state: PolicyState, wanted: Callable[[_Held], bool], now: float) -> int:
    woken = 0
    for k, (until, priority, seq, item) in enumerate(state.held):
        if until > now and wanted(item):
            state.held[k] = (now, priority, seq, item)
            woken += 1
    if woken:
        heapq.heapify(state.held)
    return woken


def due_held(state: PolicyState, *, now: float) -> list[Message]:
    """The messages of the held replies ``release_due`` would decide at ``now`` (only the
    due part of the heap is walked, not every held reply)."""
    held, due, todo = state.held, [], [0] if state.held else []
    while todo:  # the heap's subtrees under an entry not yet due hold none that are
        k = todo.pop()
        if held[k][0] <= now:
            due.append(held[k][3].message)
            todo.extend(c for c in (2 * k + 1, 2 * k + 2) if c < len(held))
    return due


def held_messages(state: PolicyState) -> list[Message]:
    """The messages whose replies are on hold, soonest deadline first."""
    return [entry[3].message for entry in sorted(state.held)]


def restore_held(state: PolicyState, message: Message, *, until: float, priority: int = 0,
                 held_at: float | None = None, rule: str = "restored") -> None:
    """Put a reply back on hold (a driver restarting from its durable store). ``rule`` is
    why it was held (the stored decision's: ``budget_hour``, ``kill_switch``...), so that
    lifting that reason wakes it (``wake_held``) as it would have before the restart."""
    if any(entry[3].message.message_id == message.message_id for entry in state.held):
        return
    sender = _sender_of(state, message.sender, message.received_at)
    at = message.received_at if held_at is None else held_at
    _hold(state, message, sender, Decision.defer(rule, until, priority), at)


def restore_flag(state: PolicyState, number: str, *, at: float) -> None:
    """Judge ``number`` a raider again, as it was judged at ``at`` (a driver restarting
    from its durable store, for a flag older than the traffic it replays): what it sends
    next is dropped as ``flagged_sender``, unless it is allow-listed. Adds no raid
    evidence (``_raid_evidence`` looks back an hour, and that hour is long past)."""
    sender = _sender_of(state, number, at)
    if sender.flag is None:
        sender.flag = "restored"


def forget_held(state: PolicyState, message_id: str) -> bool:
    """Take a reply off hold without deciding it; True if it was held."""
    return forget_held_ids(state, {message_id}) == 1


def forget_held_ids(state: PolicyState, message_ids: set[str]) -> int:
    """Take these replies off hold without deciding them (one pass over the heap, for
    many); how many were held."""
    kept = [entry for entry in state.held if entry[3].message.message_id not in message_ids]
    if len(kept) == len(state.held):
        return 0
    gone = {e[3].message.sender for e in state.held if e[3].message.message_id in message_ids}
    forgotten = len(state.held) - len(kept)
    heapq.heapify(kept)
    state.held = kept
    gone -= {entry[3].message.sender for entry in kept}
    for number in gone:
        sender = state.senders.get(number)
        if sender is not None:
            sender.held = False
    return forgotten


def settle_held(state: PolicyState, settled: list[tuple[str, str, Decision]], *,
                now: float) -> int:
    """Other drivers decided these held replies, (message id, sender, decision) each: a
    fleet of processes sharing one store, where every process holds the replies any of
    them holds and the first to release one settles it. Take them off hold here, and
    remember what ``release_due`` remembers of such a decision: a raid rule's drop flags
    its sender (raid evidence, which decides the other held replies), a reply counts
    toward the sender's limit. A decision to hold it again changes nothing. How many
    were held here."""
    final = [(mid, number, decision) for mid, number, decision in settled
             if decision.action is not Action.DEFER]
    if not final:
        return 0
    count = forget_held_ids(state, {mid for mid, _, _ in final})
    for mid, number, decision in final:
        if decision.action is Action.REPLY:
            record_reply(state, Message(mid, number, "", "", now), state.reply_cost_micros,
                         now=now)
        elif decision.rule in RAID_RULES:
            _flag(state, _sender_of(state, number, now), decision.rule, now)
    return count


def record_reply(state: PolicyState, message: Message, cost_micros: int, *, now: float) -> None:
    """The ledger accepted a reply: count it for the sender limit and budget pacing."""
    sender = _sender_of(state, message.sender, now)
    sender.replies = (*sender.replies, now)
    sender.reply_ids = (*sender.reply_ids, message.message_id)
    state.spent_micros += cost_micros
    state.recent_spend.add(now, message.message_id, cost_micros)


def record_refund(state: PolicyState, message_id: str, cost_micros: int, *,
                  sender: str) -> None:
    """A reserved reply was never billed (the provider surely did not send it): give the
    pacing money back, and stop counting that reply (the one to ``message_id``, from
    ``sender``) toward the sender limit, as the ledger's ``settle(billed=False)`` does.
    The message keeps its decision: it is never answered twice."""
    state.spent_micros -= cost_micros
    state.recent_spend.refund(message_id, cost_micros)
    known = state.senders.get(sender)
    if known is not None and message_id in known.reply_ids:
        index = known.reply_ids.index(message_id)
        known.replies = known.replies[:index] + known.replies[index + 1:]
        known.reply_ids = known.reply_ids[:index] + known.reply_ids[index + 1:]


def seed_spend(state: PolicyState, *, total_micros: int,
               last_hour: Iterable[tuple[float, str, int]] = ()) -> None:
    """Pace from a durable ledger's figures: its total spend, and the reservations of the
    last hour as (reserved_at, message_id, cost_micros), oldest first (the ledger's
    ``spend_in_hour``). Each leaves the hourly window at its own time, as in the ledger,
    so a reply held by the hourly cap is released when the ledger has room, not an hour
    after the figures were read."""
    state.spent_micros = total_micros
    spend = state.recent_spend = RollingSpend()
    for reserved_at, message_id, cost_micros in last_hour:
        spend.add(reserved_at, message_id, cost_micros)


def record_refusal(state: PolicyState, message: Message, status: ReserveStatus, *,
                   now: float) -> Decision:
    """The ledger refused a reply the policy wanted: the decision that stands instead."""
    if status is ReserveStatus.BUDGET_HOUR:
        sender = _sender_of(state, message.sender, now)
        cap = state.config.budget.per_hour_micros
        until = (
            state.recent_spend.room_at(now, cap, state.reply_cost_micros)
            if cap is not None
            else now
        )
        until = max(until, _on_grid(state, now + 1.0))  # the ledger's cap may be stricter
        return _hold(state, message, sender, Decision.defer("budget_hour", until), now)
    return Decision.drop(_REFUSAL_RULE.get(status, str(status)))


# The policy's rule names for ledger refusals it also checks itself.
_REFUSAL_RULE = {ReserveStatus.DUPLICATE: "duplicate_id"}


# ---------------------------------------------------------------------------
# Shared driver steps


def _commit(state: PolicyState, ledger: Ledger, message: Message, decision: Decision,
            now: float) -> Decision:
    if decision.action is not Action.REPLY:
        return decision
    limit = state.config.sender_limit
    status = ledger.reserve(
        ReserveRequest(
            message_id=message.message_id,
            sender=message.sender,
            cost_micros=state.reply_cost_micros,
            now=now,
            sender_limit=limit.replies if limit.enabled else None,
            sender_window_s=limit.window_s,
        )
    )
    if status is ReserveStatus.OK:
        record_reply(state, message, state.reply_cost_micros, now=now)
        return decision
    return record_refusal(state, message, status, now=now)


def admit(state: PolicyState, ledger: Ledger, message: Message, *, now: float) -> Decision:
    """Decide a new message and, for a reply, reserve its cost in the ledger."""
    decision = decide(state, message, now=now)
    if decision.action is not Action.REPLY:
        return decision  # nothing to reserve (the test _commit would make)
    return _commit(state, ledger, message, decision, now)


def release(state: PolicyState, ledger: Ledger, *, now: float) -> list[Released]:
    """Release due held replies and reserve the ones that become replies, each before the
    next is decided, so that its cost counts in the next one's budget pacing.

    (Before, every due reply was decided against the pacing as it stood and then reserved:
    past the hourly cap the ledger refused the rest, each held again, and under a low
    hourly cap thousands of held replies went round that loop every few minutes.)"""
    return release_due(state, now=now, ledger=ledger)


# ---------------------------------------------------------------------------
# Memory bounds


def _prune(state: PolicyState, now: float) -> None:
    """Forget what can no longer matter, so a year of traffic fits in memory."""
    state.last_prune = now
    cfg = state.config
    id_horizon = now - 2 * 86400.0
    if len(state.seen_ids) > 100_000:
        state.seen_ids = {k: t for k, t in state.seen_ids.items() if t >= id_horizon}
    tpl_cfg = cfg.templates
    decay_rate = math.log(2) / tpl_cfg.halflife_s
    tpl_ttl = tpl_cfg.hot_ttl_s
    exp = math.exp
    stale = {
        cid
        for cid, tpl in state.templates.items()
        if (tpl.hot_at is None or now - tpl.hot_at > tpl_ttl)
        and (tpl.first + tpl.repeats) * exp(-(now - tpl.last) * decay_rate) < 0.5
    }
    _drop_templates(state, stale)
    frag_cfg = cfg.fragments
    frag_decay = math.log(2) / frag_cfg.halflife_s
    frag_ttl = frag_cfg.hot_ttl_s
    exp = math.exp
    fragments = state.fragments
    for h in [
        h
        for h, frag in fragments.items()
        if (frag.hot_at is None or now - frag.hot_at > frag_ttl)
        and (frag.first + frag.self_repeats) * exp(-(now - frag.last) * frag_decay) < 0.5
    ]:
        del fragments[h]
    # A fragment whose heat has expired counts again only once it is hot anew, and
    # _count_fragments puts it back in the table then.
    state.hot_fragments = {
        h: frag
        for h, frag in state.hot_fragments.items()
        if frag.hot_at is not None and now - frag.hot_at <= frag_cfg.hot_ttl_s
    }
    block_horizon = now - cfg.number_blocks.window_s
    for block in [b for b, times in state.blocks.items() if not times or times[-1] < block_horizon]:
        del state.blocks[block]
    keep_s = max(cfg.sender_limit.window_s, cfg.repeats.window_s)
    if state.sender_floor >= now - keep_s:
        return  # nobody was last seen long enough ago to be forgotten
    forget = [
        number
        for number, s in state.senders.items()
        if not s.held and not s.opted_out and s.flag is None and s.last_seen < now - keep_s
    ]
    for number in forget:
        del state.senders[number]
    state.sender_floor = min((s.last_seen for s in state.senders.values()), default=math.inf)


def _drop_templates(state: PolicyState, stale: set[int]) -> None:
    if not stale:
        return
    for cid in stale:
        del state.templates[cid]
    _unfile(state.template_index, stale)


def _unfile(index: dict[str, list[int]], templates: set[int] | dict[int, _Text]) -> None:
    """Take ``templates`` out of every bucket of the template index (``_file`` files)."""
    for key in list(index):
        kept = [cid for cid in index[key] if cid not in templates]
        if kept:
            index[key] = kept
        else:
            del index[key]


def forget_raiders(state: PolicyState, *, now: float) -> int:
    """Forget the raiders (senders a raid rule flagged) silent for as long as ``_prune``
    keeps any sender (``max(sender_limit.window, repeats.window)``, 30 days by default);
    how many. ``_prune`` keeps every flag, since a raider that writes again must be
    dropped, and a simulated week never gets this far; a long-running responder would
    otherwise hold every raider the number ever had. Only for a driver whose durable
    store records each flag and gives it back (``restore_flag``) before deciding that
    sender's next message: such a sender is then decided as if it had been remembered
    (a flag, and nothing in its windows), so nothing decided changes."""
    cfg = state.config
    silent_since = now - max(cfg.sender_limit.window_s, cfg.repeats.window_s)
    gone = [number for number, s in state.senders.items()
            if s.flag is not None and not s.held and not s.opted_out
            and s.last_seen < silent_since]
    for number in gone:
        del state.senders[number]
    return len(gone)


def forget_texts(state: PolicyState, *, before: float) -> int:
    """Forget what the policy keeps of texts whose messages all came before ``before``;
    how many distinct texts it forgot.

    For a driver that erases message bodies after a retention period (the responder's
    hourly purge): the policy's memory must not keep a text longer than the store does.
    Forgotten: cached texts and their sketches (the state's ``TextSketches``, shared with
    whatever else uses it), phrases not seen since, and the phrases of a sender whose
    oldest remembered phrase came before. A template's 4-grams are its first text's: a
    template whose first text came before takes those of its latest text still cached
    (its counts stay), or is forgotten. Kept: counts, times, numbers and decisions, as
    the store keeps them; a held reply keeps its text until it is decided
    (``surge.max_hold`` at most). Only what came before ``before`` is forgotten: traffic
    that spans less than the retention (30 days by default) is decided exactly as without
    it.
    """
    cache = state.text_cache
    old = [text for text, features in cache.items() if features.seen < before]
    for text in old:
        del cache[text]
    sketches = state.sketches
    if old or len(sketches.by_text) > len(cache):
        # every sketch whose text is no longer cached (the two caches may clear apart)
        sketches.by_text = {text: sketch for text, sketch in sketches.by_text.items()
                            if text in cache}
        # normalised texts: a shortcut to a twin's sketch, rebuilt as texts come again
        sketches.by_words.clear()
    # A template whose first text came before: its 4-grams and index keys now come from
    # the latest cached text of it; with none cached, it is forgotten.
    templates = state.templates
    latest: dict[int, _Text] = {}
    for features in cache.values():
        cid = features.template
        tpl = templates.get(cid)
        if tpl is not None and tpl.shingles_at < before and features.grams is not None:
            known = latest.get(cid)
            if known is None or features.seen > known.seen:
                latest[cid] = features
    stale = {cid for cid, tpl in templates.items()
             if tpl.shingles_at < before and cid not in latest}
    if latest:
        index = state.template_index
        _unfile(index, latest)
        for cid, features in latest.items():
            assert features.grams is not None
            tpl = templates[cid]
            tpl.shingles, tpl.shingles_at = features.grams, features.seen
            _file(index, _index_keys(features, features.grams), cid)
    _drop_templates(state, stale)
    fragments, hot = state.fragments, state.hot_fragments
    for h in [h for h, frag in fragments.items() if frag.last < before]:
        del fragments[h]
        hot.pop(h, None)
    empty: frozenset[str] = frozenset()
    for sender in state.senders.values():
        if sender.frags and sender.frags_at < before:
            sender.frags = empty
    return len(old)
