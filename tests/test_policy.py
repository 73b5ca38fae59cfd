"""The pure defence policy: each rule, the hold-and-release cycle, and determinism."""

from __future__ import annotations

import ast
import gc
import random
from dataclasses import replace
from pathlib import Path

import pytest

from responder.policy import (
    Action,
    Caps,
    Controls,
    MemoryLedger,
    Message,
    PolicyConfig,
    PolicyState,
    admit,
    decide,
    engine,
    next_deadline,
    release,
    tick,
)
from responder.policy.config import Budget, Evasion, Fragments, Habit, Surge, Templates
from responder.policy.engine import (
    disguised,
    forget_raiders,
    restore_flag,
    restore_held,
    wake_held,
)
from responder.policy.errors import ConfigError

TO = "+33644649021"
COPYPASTA = "Ton numéro anti relou c'est de la merde, les féminazies vont payer chaque SMS lol"


def msg(i: int, sender: str, body: str = "Salut, on s'est vus samedi au bar", t: float = 0.0
        ) -> Message:
    return Message(f"SM{i:06d}", sender, TO, body, t)


def number(rng: random.Random) -> str:
    return f"+336{rng.randrange(10**8):08d}"


def test_replies_once_per_sender() -> None:
    """A first contact gets a reply; the same sender's next message does not."""
    state, ledger = PolicyState(), MemoryLedger()
    first = admit(state, ledger, msg(1, "+33612345678"), now=0.0)
    second = admit(state, ledger, msg(2, "+33612345678", t=60.0), now=60.0)
    assert (first.action, first.rule) == (Action.REPLY, "first_contact")
    assert (second.action, second.rule) == (Action.DROP, "sender_limit")


def test_duplicate_message_id_gets_one_decision() -> None:
    """A provider retry of the same message id is dropped as a duplicate."""
    state = PolicyState()
    assert decide(state, msg(1, "+33612345678"), now=0.0).is_reply
    again = decide(state, msg(1, "+33612345678"), now=1.0)
    assert again.rule == "duplicate_id"


@pytest.mark.parametrize(
    ("sender", "rule"),
    [
        ("36000", "short_code"),
        ("1234567", "short_code"),  # 7 and 8 digits: short codes, as the trace reader says
        ("12345678", "short_code"),
        ("INFO", "alphanumeric_sender"),
        ("SFR-Promo", "alphanumeric_sender"),
    ],
)
def test_never_replies_to_short_codes_or_alphanumeric(sender: str, rule: str) -> None:
    """Short codes and alphanumeric senders cannot be replied to (or are machines)."""
    assert decide(PolicyState(), msg(1, sender), now=0.0).rule == rule


@pytest.mark.parametrize("word", [
    "STOP", "stop", "Arret", "ARRÊT", " stop. ",
    # as people write it: French spacing, quotes, other punctuation, an emoji, iOS's
    # ellipsis, a decomposed accent, full-width letters (each was answered)
    "Stop !", "Stop\u00a0!", "Stop ?", "stop,", "Stop…", "« Stop »", '"STOP"', "STOP 🛑",
    "(stop)", "ARRE\u0302T", "ＳＴＯＰ", "arrêt !", "Désabonner.",
])
def test_opt_out_is_honoured(word: str) -> None:
    """STOP/ARRET opts the sender out; later messages get no reply."""
    state = PolicyState()
    assert decide(state, msg(1, "+33611111111", word), now=0.0).rule == "opt_out"
    assert decide(state, msg(2, "+33611111111", "Salut"), now=5.0).rule == "opted_out"


def test_a_keyword_inside_a_sentence_or_an_opt_in_written_loosely() -> None:
    """Only a message that is the keyword alone opts out (a sentence with "stop" in it is
    a message); START written as loosely opts back in."""
    state = PolicyState()
    assert decide(state, msg(1, "+33611111111", "stop ou je porte plainte"),
                  now=0.0).rule != "opt_out"
    assert decide(state, msg(2, "+33622222222", "Stop !"), now=0.0).rule == "opt_out"
    assert decide(state, msg(3, "+33622222222", "« Start ! »"), now=5.0).rule == "opt_in"
    assert not decide(state, msg(4, "+33633333333", "Stopper"), now=6.0).rule.startswith("opt")


def test_kill_switch_and_lists() -> None:
    """The operator's kill switch, block list and allow list act at once."""
    controls = Controls()
    state = PolicyState(controls=controls)
    controls.blocked.add("+3361234")
    assert decide(state, msg(1, "+33612345678"), now=0.0).rule == "blocklist"
    controls.kill_switch = True
    assert decide(state, msg(2, "+33699999999"), now=1.0).rule == "kill_switch"
    controls.kill_switch = False
    controls.allowed.add("+33688888888")
    assert decide(state, msg(3, "+33688888888", COPYPASTA), now=2.0).rule == "allowlist"


def test_allow_list_overrides_a_raid_flag() -> None:
    """A number a raid rule flagged is answered once the operator allow-lists it, and is
    dropped again as flagged once it leaves the list (the flag is kept, not erased)."""
    controls = Controls()
    state = PolicyState(PolicyConfig(surge=Surge(enabled=False)), controls=controls)
    text = "Salut la féminazie, on va te ruiner ton forfait, qui est là"
    decisions = [decide(state, msg(i, f"+3375550{i:04d}", text, float(i)), now=float(i))
                 for i in range(16)]
    flagged = next(f"+3375550{i:04d}" for i, d in enumerate(decisions)
                   if d.rule == "number_block")
    again = "Pardon, je suis une vraie personne, c'était mon collègue"
    assert decide(state, msg(100, flagged, again, 50.0), now=50.0).rule == "flagged_sender"
    controls.allowed.add(flagged)
    allowed = decide(state, msg(101, flagged, again, 60.0), now=60.0)
    assert (allowed.action, allowed.rule) == (Action.REPLY, "allowlist")
    controls.allowed.clear()
    assert decide(state, msg(102, flagged, again, 70.0), now=70.0).rule == "flagged_sender"


def test_pruning_keeps_raiders_and_forget_raiders_drops_the_long_silent_ones() -> None:
    """``_prune`` forgets senders silent for the sender window but keeps every raider
    (one that writes again must be dropped); ``forget_raiders``, for a driver whose store
    gives flags back, drops the raiders silent that long, and no other sender: not a
    recent raider, not one held or opted out, not an unflagged one."""
    day = 86400.0
    state = PolicyState(PolicyConfig(surge=Surge(enabled=False)))
    for k, number in enumerate(("+33611000001", "+33611000002", "+33611000003")):
        decide(state, msg(k, number, "Bonjour, on m'a donné ce numéro", float(k)), now=float(k))
        restore_flag(state, number, at=float(k))
    decide(state, msg(9, "+33611000004", "STOP", 9.0), now=9.0)
    decide(state, msg(10, "+33611000005", "Bonjour, on m'a donné ce numéro", 10.0), now=10.0)
    state.senders["+33611000003"].held = True  # as a reply on hold marks its sender
    late = 40 * day
    decide(state, msg(11, "+33611000002", "encore", 35 * day), now=35 * day)  # recent
    decide(state, msg(12, "+33611000006", "Bonjour, on m'a donné ce numéro", late), now=late)
    assert "+33611000005" not in state.senders  # pruned: unflagged and silent
    assert "+33611000001" in state.senders  # pruning keeps raiders
    assert forget_raiders(state, now=late) == 1
    assert set(state.senders) == {"+33611000002", "+33611000003", "+33611000004",
                                  "+33611000006"}


def test_settle_held_remembers_another_drivers_release() -> None:
    """``settle_held`` takes replies another driver decided off hold and remembers what
    ``release_due`` would: a raid rule's drop flags its sender and adds raid evidence, a
    reply counts toward the sender's limit, a hold again changes nothing."""
    from responder.policy import Decision

    state = PolicyState(PolicyConfig(surge=Surge(enabled=False)))
    people = ["+33611000001", "+33611000002", "+33611000003"]
    for k, number in enumerate(people):
        decide(state, msg(k, number, "Bonjour, on m'a donné ce numéro", float(k)), now=float(k))
        restore_held(state, msg(k, number, "Bonjour, on m'a donné ce numéro", float(k)),
                     until=100.0, rule="surge_hold")
    before = state.recent_flagged
    settled = engine.settle_held(state, [
        ("SM000000", people[0], Decision.drop("raid_template")),
        ("SM000001", people[1], Decision.reply("released")),
        ("SM000002", people[2], Decision.defer("surge_hold", 200.0)),
    ], now=10.0)
    assert settled == 2 and state.held_count == 1
    assert state.senders[people[0]].flag == "raid_template"
    assert state.recent_flagged > before
    assert state.senders[people[1]].reply_ids == ("SM000001",)
    assert not state.senders[people[1]].held and state.senders[people[2]].held
    assert decide(state, msg(9, people[1], "Merci", 20.0), now=20.0).rule == "sender_limit"


def test_total_budget_is_a_hard_cap() -> None:
    """Once the cap cannot cover one more reply, replies stop."""
    config = PolicyConfig(budget=Budget(total_micros=480_000), surge=Surge(enabled=False))
    state, ledger = PolicyState(config), MemoryLedger(Caps(total_micros=480_000))
    rng = random.Random(3)
    decisions = [admit(state, ledger, msg(i, number(rng), t=i * 600.0), now=i * 600.0)
                 for i in range(5)]
    assert [d.is_reply for d in decisions] == [True, True, True, False, False]
    assert decisions[3].rule == "budget_total"
    assert ledger.spent_micros() == 480_000


def test_hourly_cap_defers_to_next_hour() -> None:
    """A reply over the hourly cap is held until the last hour's spend makes room."""
    config = PolicyConfig(budget=Budget(per_hour_micros=160_000), surge=Surge(enabled=False))
    state, ledger = PolicyState(config), MemoryLedger(Caps(per_hour_micros=160_000))
    assert admit(state, ledger, msg(1, "+33611111111"), now=10.0).is_reply
    held = admit(state, ledger, msg(2, "+33622222222"), now=20.0)
    assert (held.action, held.rule, held.until) == (Action.DEFER, "budget_hour", 3610.0)
    assert next_deadline(state) == 3610.0
    assert release(state, ledger, now=3609.0) == []
    released = release(state, ledger, now=3610.0)
    assert [(r.message.message_id, r.decision.rule) for r in released] == [
        ("SM000002", "released")
    ]


def test_replies_held_for_the_hourly_cap_are_looked_at_when_their_turn_can_come() -> None:
    """600 first contacts behind an hourly cap of 12 replies. Each due one was decided
    against the pacing as it stood, then reserved: past the cap the ledger refused the
    rest, each held again, and all were looked at again at the next room (29,351 looks
    over the 49-hour drain). Now each reply counts in the next one's pacing, and a held
    reply is looked at again when its turn can come, behind those waiting before it (an
    hour ahead past an hour's worth): 15,239 looks. Every slot of every rolling hour is
    still used, first come first served."""
    cap = 12 * 160_000
    config = PolicyConfig(budget=Budget(per_hour_micros=cap), surge=Surge(enabled=False))
    state, ledger = PolicyState(config), MemoryLedger(Caps(per_hour_micros=cap))
    rng = random.Random(5)
    for i in range(600):
        admit(state, ledger, msg(i, number(rng), f"Bonsoir, on m'a donné ce numéro {i}",
                                 float(i)), now=float(i))
    looked_at, replied = 0, []
    while (deadline := next_deadline(state)) is not None:
        looked_at += len(engine.due_held(state, now=deadline))
        for r in release(state, ledger, now=deadline):
            assert r.decision.rule == "released"
            replied.append((deadline, r.message.message_id))
    assert len(replied) == 600 - 12
    # first come, first served; 12 in every hour, and never more
    assert [mid for _, mid in replied] == [f"SM{i:06d}" for i in range(12, 600)]
    times = [t for t, _ in replied]
    assert all(b - a >= 3600.0 for a, b in zip(times, times[12:], strict=False))
    assert times[-1] < 50 * 3600.0
    assert looked_at < 20_000


def test_held_replies_wait_out_the_kill_switch() -> None:
    """A held reply due while the kill switch is on stays held (a drop would be final);
    once the switch is off, ``wake_held`` makes it due at once."""
    config = PolicyConfig(budget=Budget(per_hour_micros=160_000), surge=Surge(enabled=False))
    controls = Controls()
    state = PolicyState(config, controls)
    ledger = MemoryLedger(Caps(per_hour_micros=160_000))
    assert admit(state, ledger, msg(1, "+33611111111"), now=10.0).is_reply
    assert admit(state, ledger, msg(2, "+33622222222"), now=20.0).rule == "budget_hour"
    controls.kill_switch = True
    assert release(state, ledger, now=3610.0) == []
    assert state.held_count == 1 and next_deadline(state) is not None
    controls.kill_switch = False
    assert wake_held(state, "budget_hour", now=3700.0) == 0  # held for the switch now
    assert wake_held(state, "kill_switch", now=3700.0) == 1
    assert next_deadline(state) == 3700.0
    released = release(state, ledger, now=3700.0)
    assert [(r.message.message_id, r.decision.rule) for r in released] == [
        ("SM000002", "released")
    ]


def test_a_reply_restored_on_hold_keeps_the_reason_it_was_held() -> None:
    """A restart puts held replies back from the database: tagged "restored", one held for
    the hourly cap was not woken when the cap was raised, and waited up to an hour."""
    state = PolicyState(PolicyConfig(surge=Surge(enabled=False)))
    restore_held(state, msg(1, "+33611111111", t=5.0), until=3600.0, rule="budget_hour")
    restore_held(state, msg(2, "+33622222222", t=6.0), until=3600.0)
    assert wake_held(state, "budget_hour", now=100.0) == 1
    assert next_deadline(state) == 100.0


def _raid(state: PolicyState, ledger: MemoryLedger, start: int, n: int, t0: float,
          rng: random.Random) -> list[Message]:
    sent = []
    for i in range(n):
        t = t0 + i * 2.0
        body = COPYPASTA + (" " + "!" * rng.randrange(3)) + f" {rng.randrange(100)}"
        m = msg(start + i, number(rng), body, t)
        admit(state, ledger, m, now=t)
        sent.append(m)
    return sent


def test_surge_holds_then_releases_genuine_senders() -> None:
    """A surge of new senders holds first contacts; clean ones are released after calm."""
    state, ledger = PolicyState(), MemoryLedger()
    rng = random.Random(7)
    decisions = []
    texts = ["Bonjour, c'est qui ?", "J'ai vu le reportage au JT", "Salut !", "Hello ?"]
    for i in range(300):  # a press surge: 300 distinct people in 10 minutes
        t = i * 2.0
        d = admit(state, ledger, msg(i, number(rng), f"{rng.choice(texts)} {i}", t), now=t)
        decisions.append(d)
    assert state.raid_mode
    assert any(d.rule == "surge_hold" for d in decisions)
    t = 600.0
    released = []
    while (deadline := next_deadline(state)) is not None and t < 3 * 86400:
        t = max(t, deadline)
        released += release(state, ledger, now=t)
    replied = sum(d.is_reply for d in decisions) + sum(r.decision.is_reply for r in released)
    assert replied == 300  # every genuine sender answered, late but answered
    assert t <= 600.0 + 2 * Surge().observe_s  # a genuine surge is not held to the end
    tick(state, now=t + 2 * 3600.0)
    assert not state.raid_mode


def test_raid_mode_ends_after_a_silence_at_the_calm_windows_end() -> None:
    """A burst, then hours without a message: raid mode ended only at a tick (or message)
    at least ``calm`` after the first one that saw the silence, and the period's end was
    that late tick's window. It now ends at the end of the window where the calm had
    lasted ``calm``, whenever the silence is seen."""
    surge = Surge(floor_new_senders=2, window_s=600.0, calm_s=600.0, observe_s=1200.0)
    state = PolicyState(PolicyConfig(surge=surge))
    rng = random.Random(3)
    for i in range(6):
        decide(state, msg(i, number(rng), f"Bonjour, c'est qui ? {i}", 10.0 * i), now=10.0 * i)
    assert state.raid_mode
    tick(state, now=5 * 3600.0)
    assert not state.raid_mode
    # the burst's window ends at 600 s, the first calm one at 1,200 s, calm from there
    assert state.raid_periods == [(20.0, 1800.0)]  # (the third new sender set it off)


def test_ticks_change_no_decision() -> None:
    """``tick`` lets time pass: where and how often a driver calls it (the simulator at
    held replies' deadlines, the responder's policy clock every second) changes neither a
    decision nor the raid-mode periods. Bursts and silences, ticked at random times."""
    surge = Surge(floor_new_senders=3, window_s=300.0, calm_s=900.0, observe_s=600.0)
    config = PolicyConfig(surge=surge)
    for seed in range(8):
        rng = random.Random(seed)
        messages, t = [], 0.0
        for i in range(400):
            t += rng.choice([1.0, 5.0, 30.0, 120.0, 900.0, 4000.0])
            messages.append(msg(i, number(rng), f"Bonsoir, on m'a donné ce numéro {i}", t))
        runs = []
        for ticks in (False, True):
            state, ledger = PolicyState(config), MemoryLedger()
            out, last = [], 0.0
            for m in messages:
                if ticks:
                    while last + 1.0 < m.received_at:
                        last = rng.uniform(last, m.received_at)
                        tick(state, now=last)
                deadline = next_deadline(state)
                while deadline is not None and deadline <= m.received_at:
                    out += [(r.message.message_id, r.decision.rule)
                            for r in release(state, ledger, now=deadline)]
                    deadline = next_deadline(state)
                out.append((m.message_id, admit(state, ledger, m, now=m.received_at).rule))
                last = m.received_at
            runs.append((out, state.raid_periods))
        assert runs[0] == runs[1]
        assert len(runs[0][1]) > 1  # raid mode came and went


def test_copy_paste_template_is_dropped() -> None:
    """Near-duplicate texts from many distinct senders, some repeating, become a raid template."""
    state, ledger = PolicyState(PolicyConfig(surge=Surge(enabled=False))), MemoryLedger()
    rng = random.Random(11)
    raiders = _raid(state, ledger, 0, 12, 0.0, rng)
    for j, m in enumerate(raiders[:3]):  # a few raiders paste it again
        admit(state, ledger, msg(100 + j, m.sender, COPYPASTA, 30.0 + j), now=30.0 + j)
    late = decide(state, msg(200, number(rng), COPYPASTA + " ptdr", 40.0), now=40.0)
    assert (late.action, late.rule) == (Action.DROP, "raid_template")
    genuine = decide(state, msg(201, number(rng), "Bonsoir, je crois qu'on s'est croisés hier "
                                "soir au concert, tu te souviens ?", 41.0), now=41.0)
    assert genuine.is_reply


PHRASE = "Je voulais savoir si tu étais bien rentrée hier soir"


def test_a_second_message_in_a_common_phrase_is_not_a_repeat() -> None:
    """Only a sender pasting its own text again is raid behaviour: a genuine person whose
    *second* message happens to be a phrase many others open with (a red-team trace lost
    97 genuine senders to one such "Bonsoir c'est Lucas" first) does not make it a raid
    template."""
    state, ledger = PolicyState(PolicyConfig(surge=Surge(enabled=False))), MemoryLedger()
    rng = random.Random(3)
    for i in range(12):
        assert admit(state, ledger, msg(i, number(rng), PHRASE, float(i)), now=float(i)).is_reply
    lucas = number(rng)
    assert admit(state, ledger, msg(20, lucas, "Bonsoir c'est Lucas", 20.0), now=20.0).is_reply
    admit(state, ledger, msg(21, lucas, PHRASE, 21.0), now=21.0)
    later = [admit(state, ledger, msg(30 + i, number(rng), PHRASE, 30.0 + i), now=30.0 + i)
             for i in range(20)]
    assert all(d.is_reply for d in later), {d.rule for d in later}


def test_a_few_raiders_cannot_poison_a_phrase_thousands_use() -> None:
    """Each sender counts once as a repeater of a template, however often it pastes it:
    4 raiders flooding a TV catchphrase among 200 viewers do not make it a raid template;
    when most of its senders repeat it, it is one."""
    phrase = "JE DIS NON AUX RELOUS vu au journal"

    def viewers_after(raiders: int, pastes: int) -> set[str]:
        state, ledger = PolicyState(PolicyConfig(surge=Surge(enabled=False))), MemoryLedger()
        rng = random.Random(4)
        t = 0.0
        for i in range(200):
            t += 1.0
            admit(state, ledger, msg(i, number(rng), phrase, t), now=t)
        crowd = [number(rng) for _ in range(raiders)]
        for k in range(pastes):  # each raider pastes it, then again 10 minutes later...
            t += 600.0
            for r, sender in enumerate(crowd):
                t += 1.0
                admit(state, ledger, msg(1000 + r * 100 + k, sender, phrase, t), now=t)
        return {admit(state, ledger, msg(9000 + i, number(rng), phrase, t + 1 + i),
                      now=t + 1 + i).rule for i in range(10)}

    assert viewers_after(4, 50) == {"first_contact"}
    assert viewers_after(60, 2) == {"raid_template"}


def test_a_hot_template_cools_when_genuine_senders_dilute_it() -> None:
    """A template made hot by its first few senders repeating it cools once many more
    senders send it without ever repeating it (a phrase from the TV, not a raid's)."""
    state, ledger = PolicyState(PolicyConfig(surge=Surge(enabled=False))), MemoryLedger()
    rng = random.Random(5)
    early = [number(rng) for _ in range(6)]
    t = 0.0
    for k in range(2):
        for i, sender in enumerate(early):
            t += 1.0
            admit(state, ledger, msg(k * 10 + i, sender, PHRASE, t), now=t)
    t += 1.0
    assert decide(state, msg(50, number(rng), PHRASE, t), now=t).rule == "raid_template"
    rules = []
    for i in range(400):
        t += 1.0
        rules.append(admit(state, ledger, msg(100 + i, number(rng), PHRASE, t), now=t).rule)
    assert rules[0] == "raid_template" and rules[-1] == "first_contact"


@pytest.mark.parametrize(("resend_share", "delay_s", "expected"), [
    (0.2, 40.0, "first_contact"),  # viewers pressing send again: the same message
    (0.2, 600.0, "raid_template"),  # pasting it again ten minutes later: a repeat
    (1.0, 3.0, "raid_template"),  # a script sending every text twice from every number
])
def test_a_text_sent_again_at_once_is_a_retry_not_a_paste(resend_share: float,
                                                         delay_s: float, expected: str) -> None:
    """A fourth red team's TV surge, with no raid, lost 41 % of its genuine senders: one
    viewer in ten sent its own text again within a minute or two while replies were held,
    and those resends made the texts every viewer wrote raid templates. A first text sent
    again, byte for byte, within 5 minutes (as a 2nd or 3rd message) is now the same
    message; a template goes hot on such resends only when half its senders do it."""
    state, ledger = PolicyState(PolicyConfig(surge=Surge(enabled=False))), MemoryLedger()
    rng = random.Random(12)
    sends = []
    for i in range(200):
        sender = number(rng)
        sends.append((20.0 * i, sender))
        if rng.random() < resend_share:
            sends.append((20.0 * i + delay_s, sender))
    sends.sort()
    for i, (t, sender) in enumerate(sends):
        admit(state, ledger, msg(i, sender, PHRASE, t), now=t)
    later = {decide(state, msg(9000 + k, number(rng), PHRASE, t + 1 + k), now=t + 1 + k).rule
             for k in range(5)}
    assert later == {expected}


@pytest.mark.parametrize(("text", "hidden"), [
    ("sa\u200blope de numéro", True),  # a word split for a filter
    ("ab\u200b\u200ccd", True),
    ("Merci pour ce numéro\u200b #respect", False),  # a caption's spacing character
    ("\ufeffBonjour, c'est qui ?", False),  # a byte-order mark at the start
    ("Je dis non\u2060 aux relous", False),  # a word joiner beside a space
    ("Bonjour à tous\u200b", False),
    ("Bonjоur", True),  # a Cyrillic "о" inside a Latin word
    ("Bonjour 😘‍🔥", False),  # U+200D inside an emoji sequence
])
def test_an_invisible_character_disguises_a_text_only_inside_a_word(text: str,
                                                                     hidden: bool) -> None:
    """Filter-dodging scripts split words; copies from social networks carry invisible
    characters at their edges, which a fifth red team's genuine surges lost senders to."""
    assert disguised(text) is hidden


@pytest.mark.parametrize(("stray", "look_alike", "evasion", "expected"), [
    (1, False, True, "first_contact"),  # one copy in a hundred with a U+200B inside a word
    (40, False, True, "raid_template"),  # a fifth of the copies: a script's habit
    (0, True, True, "raid_template"),  # one copy with a look-alike letter
    # with the evasion defence off, disguise is no evidence at all (it still was for
    # templates: one look-alike copy made the text a raid's)
    (0, True, False, "first_contact"),
    (40, False, False, "first_contact"),
])
def test_a_stray_invisible_character_does_not_make_a_genuine_text_a_raid_template(
        stray: int, look_alike: bool, evasion: bool, expected: str) -> None:
    """A fifth red team's TV surge lost a quarter of its genuine senders when one pasted
    copy in a hundred of a slogan carried a U+200B inside a word: the whole slogan became
    a raid template. Such copies now count only once a tenth of its senders sent one."""
    config = PolicyConfig(surge=Surge(enabled=False), evasion=Evasion(enabled=evasion))
    state, ledger = PolicyState(config), MemoryLedger()
    rng = random.Random(13)
    t = 0.0
    hidden = set(range(3, 200, 200 // stray)) if stray else set()
    for i in range(200):
        t += 20.0
        body = PHRASE
        if i in hidden:
            body = PHRASE.replace("savoir", "sa\u200bvoir")
        if look_alike and i == 7:
            body = PHRASE.replace("savoir", "sаvoir")  # Cyrillic "а"
        admit(state, ledger, msg(i, number(rng), body, t), now=t)
    later = {decide(state, msg(9000 + k, number(rng), PHRASE, t + 1 + k), now=t + 1 + k).rule
             for k in range(5)}
    assert later == {expected}


QUOTE = "Bonjour, c'est vrai que vous répondez à tous les messages ?"


@pytest.mark.parametrize(("spread_s", "config", "expected"), [
    (3 * 3600.0, PolicyConfig(), "first_contact"),  # the public wrote it first: public
    (1800.0, PolicyConfig(), "raid_template"),  # 60 senders in 30 minutes: a raid's wave
    (3 * 3600.0, PolicyConfig(templates=Templates(public_senders=0),
                              fragments=Fragments(public_senders=0)), "raid_template"),
])
def test_a_text_the_public_sent_first_stays_public(spread_s: float, config: PolicyConfig,
                                                    expected: str) -> None:
    """A news article prints the text to send; people send it word for word for hours, then
    a raid opens with it and its raiders paste it again. Its genuine senders must still be
    answered (a red-team world lost half of them for three days). A raid's own template,
    pasted by 60 numbers within half an hour before the repeats start, is still caught;
    ``public_senders = 0`` turns the exemption off."""
    state, ledger = PolicyState(replace(config, surge=Surge(enabled=False))), MemoryLedger()
    rng = random.Random(6)
    t = 0.0
    for i in range(60):  # readers, none of whom writes it twice
        t += spread_s / 60
        assert admit(state, ledger, msg(i, number(rng), QUOTE, t), now=t).is_reply
    raiders = [number(rng) for _ in range(40)]
    for k in range(2):  # raiders: the quote, then the quote again 10 minutes later
        t += 600.0 * k
        for r, sender in enumerate(raiders):
            t += 5.0
            admit(state, ledger, msg(1000 + 10 * r + k, sender, QUOTE, t), now=t)
    t += 60.0
    later = {decide(state, msg(9000 + i, number(rng), QUOTE, t + i), now=t + i).rule
             for i in range(5)}
    assert later == {expected}


def _surge(state: PolicyState, ledger: MemoryLedger, rng: random.Random, *, first_id: int = 0,
           text: str = "Bonjour, c'est qui ? {i}", t: float = 0.0) -> float:
    """300 new senders, one every 2 s from ``t``: raid mode, first contacts held. Returns
    the time of the last one."""
    for i in range(300):
        t += 2.0
        admit(state, ledger, msg(first_id + i, number(rng), text.format(i=i), t), now=t)
    assert state.raid_mode
    return t


STOCK = ["Je voulais juste dire merci", "merci pour ce que vous faites",
         "vous faites un travail formidable", "bon courage à toute l'équipe",
         "continuez comme ça surtout", "je vous soutiens à fond"]


def _stock_text(rng: random.Random, i: int) -> str:
    """A text of one's own, built from the stock phrases people use to write to such a
    number, with a word of one's own."""
    a, b, c = rng.sample(STOCK, 3)
    return f"{a} {['Léa', 'Hugo', 'Inès', 'Malik', 'Zoé'][i % 5]}, {b}. {c} !"


@pytest.mark.parametrize(("follow_ups", "held", "quiet_day", "expected"), [
    ([180.0, 360.0], False, False, "first_contact"),  # answered, 2 more texts minutes later
    ([180.0, 360.0], True, False, "raid_phrases"),  # the same while their replies are held
    ([180.0, 360.0, 540.0, 720.0], False, False, "raid_phrases"),  # a 4th and 5th: keep on
    ([4200.0, 8400.0], False, True, "raid_phrases"),  # back with the same pieces hours later
])
def test_people_writing_on_in_stock_phrases_do_not_make_them_a_raids(
        follow_ups: list[float], held: bool, quiet_day: bool, expected: str) -> None:
    """A magazine testimony read all day, a viral share at a steady plateau: people write
    their own texts from the same stock phrases ("Je voulais juste dire...", "merci pour
    ce que vous faites"), and, once answered, one in three writes two more texts of them
    minutes later. Counted as reusing those phrases, they made them hot, and the newcomers
    who wrote them were dropped (a sixth red team's worlds: coverage 0.83 to 0.94). A
    raid's members who do it while their replies are held, keep sending their pieces (a
    4th message and more), or come back to them later, still make them hot (coming back
    later: on a number whose people do not, a quiet day of people who write once first;
    where it is the people's habit, see the next test)."""
    state, ledger = PolicyState(PolicyConfig(surge=Surge(enabled=False))), MemoryLedger()
    rng = random.Random(21)
    t = 0.0
    if quiet_day:
        for i in range(720):  # one person every two minutes, who writes once
            t += 120.0
            admit(state, ledger, msg(50000 + i, number(rng), f"Bonjour, {i} ?", t), now=t)
    if held:  # a surge first: raid mode holds first contacts
        state = PolicyState()
        t = _surge(state, ledger, rng, first_id=90000)
    writers = []
    for i in range(60):  # one person every 30 s; every third writes on
        t += 30.0
        sender = number(rng)
        first = admit(state, ledger, msg(i, sender, _stock_text(rng, i), t), now=t)
        assert first.rule == ("surge_hold" if held else "first_contact")
        if i % 3 == 0:
            writers.append((sender, t))
    later = sorted((start + gap, k, sender) for sender, start in writers
                   for k, gap in enumerate(follow_ups))
    for n, (at, k, sender) in enumerate(later):
        t = max(t, at)
        admit(state, ledger, msg(1000 + n, sender, _stock_text(rng, n + k), t), now=t)
    newcomers = {decide(state, msg(9000 + i, number(rng), _stock_text(rng, i), t + 1 + i),
                        now=t + 1 + i).rule for i in range(5)}
    assert newcomers == {expected}


CANNED = ["Salut c'est qui ?", "Bonsoir tu es qui ?", "Coucou on se connait ?", "Allô qui est là ?"]


@pytest.mark.parametrize(("sends", "held", "expected"), [
    (2, False, "first_contact"),  # answered, the same text once more: half
    (3, False, "raid_phrases"),  # twice more: the rest, as a raid's members do
    (2, True, "raid_phrases"),  # while their replies are held, a variant of it: in full
])
def test_an_answered_sender_sending_a_canned_text_again_counts_half_for_its_phrases(
        sends: int, held: bool, expected: str) -> None:
    """A generator drawing each genuine text from a short list (1-3 per person, with
    replacement) makes some people send the same text twice by chance. One in six doing
    so, 20 minutes apart, once answered, made the list's phrases hot in full (the
    newcomers who wrote them were dropped: 76 to 95 % coverage on tests/heldout/naive.py's
    canned worlds). Sent a third time, or while held (a variant: the very same text is a
    retry then), the text counts in full."""
    state, ledger = PolicyState(PolicyConfig(surge=Surge(enabled=False))), MemoryLedger()
    rng = random.Random(5)
    t = 0.0
    if held:  # a surge first: raid mode holds first contacts
        state = PolicyState()
        t = _surge(state, ledger, rng, first_id=90000, text="Message numéro {i} du jour")
    resenders = []
    for i in range(120):  # one person a minute (and in a surge, 30 others)
        for j in range(30 if held else 0):
            admit(state, ledger, msg(20000 + 30 * i + j, number(rng), f"Message {j} du jour",
                                     t + 2.0 * j), now=t + 2.0 * j)
        t += 60.0
        sender, text = number(rng), CANNED[i % len(CANNED)]
        first = admit(state, ledger, msg(i, sender, text, t), now=t)
        assert first.rule == ("surge_hold" if held else "first_contact")
        if i % 24 < 4:  # one in six people sends its text again: 4 in each 24, one per text
            resenders.append((t, sender, text))
    later = sorted((start + (400.0 if held else 1200.0) * k, sender, text)
                   for start, sender, text in resenders for k in range(1, sends))
    for n, (at, sender, text) in enumerate(later):
        t = max(t, at)
        admit(state, ledger, msg(1000 + n, sender, text + " ?" * held, t), now=t)
    newcomers = {decide(state, msg(9000 + i, number(rng), CANNED[0], t + 1 + i),
                        now=t + 1 + i).rule for i in range(4)}
    assert newcomers == {expected}


OPENERS = ["Bonjour", "Salut", "Coucou", "Bonsoir"]
SENTENCES = ["je voulais vous remercier pour votre message de ce soir",
             "une amie m'a donné ce numéro hier au travail",
             "je trouve votre initiative vraiment très utile",
             "est-ce que je peux partager ce numéro avec mes copines",
             "on m'a raconté votre histoire à la radio ce matin",
             "c'est génial de voir enfin ce genre de service",
             "je ne savais pas que ce numéro existait encore",
             "merci de prendre le temps de répondre à tout le monde"]


def _listed_text(rng: random.Random, sentence: str | None = None) -> str:
    """A text as a simple trace generator writes one: an opener and one of 8 sentences."""
    return f"{rng.choice(OPENERS)}, {sentence or rng.choice(SENTENCES)}."


@pytest.mark.parametrize("enabled", [True, False])
def test_a_number_whose_people_reuse_their_words_learns_it_as_their_habit(
        enabled: bool) -> None:
    """Every text is an opener and one of 8 sentences, and a quarter of the people,
    answered, write again hours later with the same sentence: a fixed bar (a tenth of a
    template's senders reusing it) made every sentence a raid's, and the newcomers who
    wrote them were dropped (tests/heldout/naive.py's organic_combined_chatty: coverage
    0.09 to 0.16). The number's own habit, learnt while calm, raises the bar above it:
    99 % of the people are answered (those lost wrote in the first hours, before the
    habit was known), and newcomers are on the second day. Without it, 35 %."""
    config = PolicyConfig(surge=Surge(enabled=False), habit=Habit(enabled=enabled))
    state, ledger = PolicyState(config), MemoryLedger()
    rng = random.Random(8)
    events = []
    for i in range(1440):  # one new person every two minutes for two days
        t = 120.0 * i
        sentence = rng.choice(SENTENCES)
        events.append((t, i, number(rng), sentence))
    later = []
    for t, i, sender, sentence in events:
        if i % 4 == 0:  # a quarter write again, 2 to 10 hours later, with the same sentence
            later.append((t + rng.uniform(7200.0, 36000.0), 100000 + i, sender, sentence))
    t, answered = 0.0, 0
    for t, i, sender, sentence in sorted(events + later):
        if t > 172800.0:
            break  # two days
        decision = admit(state, ledger, msg(i, sender, _listed_text(rng, sentence), t), now=t)
        answered += i < 100000 and decision.rule == "first_contact"
    newcomers = [decide(state, msg(900000 + k, number(rng), _listed_text(rng), t + k),
                        now=t + k).rule for k in range(8)]
    if enabled:
        assert answered >= 0.95 * len(events)
        assert set(newcomers) == {"first_contact"}
    else:
        assert answered < 0.5 * len(events)
        assert {"raid_template", "raid_phrases"} & set(newcomers)


@pytest.mark.parametrize(("learn", "learnt"), [
    (86400.0, False),  # a day to learn the habit: the raid's onset, a day later, is refused
    (10 * 86400.0, True),  # learning from everything: the raid would become the habit
])
def test_a_raids_onset_is_not_learnt_as_the_numbers_habit(learn: float, learnt: bool) -> None:
    """A day and a half of people who do not write again, then raiders, answered, who
    each paste their text again an hour or two later: their hours, far above the habit
    learnt so far, are not learnt from, and their template is a raid's as it always was."""
    config = PolicyConfig(surge=Surge(enabled=False), habit=Habit(learn_s=learn))
    state, ledger = PolicyState(config), MemoryLedger()
    rng = random.Random(3)
    events = [(120.0 * i, i, number(rng), _stock_text(rng, i)) for i in range(1080)]
    for k in range(200):  # 200 raiders over 5 hours from 36 h, all pasting again
        t, sender = 129600.0 + 90.0 * k, number(rng)
        events.append((t, 10000 + k, sender, COPYPASTA))
        events.append((t + rng.uniform(3600.0, 7200.0), 20000 + k, sender, COPYPASTA + " !"))
    t = 0.0
    for t, i, sender, body in sorted(events):
        admit(state, ledger, msg(i, sender, body, t), now=t)
    assert (engine._habit_share(state, 0.1) is not None) == learnt
    if not learnt:
        newcomers = {decide(state, msg(900000 + k, number(rng), COPYPASTA, t + k),
                            now=t + k).rule for k in range(4)}
        assert newcomers == {"raid_template"}


@pytest.mark.parametrize(("told", "learnt"), [
    (False, True),  # a fresh number: its first day is learnt from without question
    (True, False),  # memory rebuilt from its last days: that day is long past
])
def test_a_rebuilt_memory_does_not_relearn_the_first_day(told: bool, learnt: bool) -> None:
    """A driver that replays a window of stored traffic tells the policy when its number
    started (``number_since``): a raid's onset in the window's first hours is then refused
    as it was live, not learnt as the number's habit."""
    config = PolicyConfig(surge=Surge(enabled=False))
    state, ledger = PolicyState(config), MemoryLedger()
    if told:
        engine.number_since(state, -7 * 86400.0)
    rng = random.Random(4)
    events = [(120.0 * i, i, number(rng), _stock_text(rng, i)) for i in range(300)]
    for k in range(200):  # 200 raiders over 5 hours from the 10th hour, all pasting again
        t, sender = 36000.0 + 90.0 * k, number(rng)
        events.append((t, 10000 + k, sender, COPYPASTA))
        events.append((t + rng.uniform(3600.0, 7200.0), 20000 + k, sender, COPYPASTA + " !"))
    for t, i, sender, body in sorted(events):
        admit(state, ledger, msg(i, sender, body, t), now=t)
    assert (engine._habit_share(state, 0.1) is not None) == learnt


def test_a_held_sender_who_writes_again_in_new_words_is_answered() -> None:
    """During a surge, a person whose reply is held writes again ("allô ?", "tu réponds
    pas ?"), or sends its first text again (at once, or still waiting a quarter of an hour
    later): not a flood. One who pastes its text again after more messages, or writes far
    more than people do, is."""
    state, ledger = PolicyState(), MemoryLedger()
    rng = random.Random(9)
    t = _surge(state, ledger, rng)  # a press surge: raid mode, first contacts held
    impatient, paster, chatterbox = number(rng), number(rng), number(rng)
    retrier, late_retrier = number(rng), number(rng)
    first = "Bonsoir, on s'est vus au concert samedi, tu te souviens de moi ?"
    follow_ups = ["allô ?", "tu réponds pas ?", "bon...", "sérieux ?", "ok j'ai compris"]
    for sender in (impatient, paster, chatterbox, retrier, late_retrier):
        t += 1.0
        assert admit(state, ledger, msg(1000 + len(sender) + int(t), sender, first, t),
                     now=t).rule == "surge_hold"
    for k, text in enumerate(follow_ups):
        t += 30.0
        admit(state, ledger, msg(2000 + k, impatient, text, t), now=t)
        admit(state, ledger, msg(3000 + k, paster, first if k >= 3 else text, t), now=t)
        if k < 2:  # the same text sent again at once, twice: a retry, not a paste
            admit(state, ledger, msg(5000 + k, retrier, first, t), now=t)
    for k in range(12):
        t += 20.0
        admit(state, ledger, msg(4000 + k, chatterbox, f"{follow_ups[k % 5]} {k}", t), now=t)
    t += 600.0  # still no answer after a quarter of an hour: the same text again, held
    admit(state, ledger, msg(6000, late_retrier, first, t), now=t)
    outcome = {}
    while (deadline := next_deadline(state)) is not None and t < 3 * 86400:
        t = max(t, deadline)
        for item in release(state, ledger, now=t):
            outcome[item.message.sender] = item.decision.rule
    assert outcome[impatient] == outcome[retrier] == outcome[late_retrier] == "released"
    assert outcome[paster] == outcome[chatterbox] == "repeat_flood"


def test_viewers_pressing_send_again_and_again_while_held_do_not_make_their_text_a_raids(
        ) -> None:
    """In a press surge (raid mode, first contacts held), one viewer in seven sends its
    text five times, waiting for an answer. Each of them floods (its own drop), but the
    text they share with everyone else is no raid template: the others are answered. Such
    sends counted as pastes made it one, and every viewer who wrote it went unanswered."""
    state, ledger = PolicyState(), MemoryLedger()
    rng = random.Random(14)
    t = _surge(state, ledger, rng)
    viewers = [number(rng) for _ in range(105)]
    impatient = set(viewers[::7])
    sends = []
    for k, sender in enumerate(viewers):
        start = t + 5.0 * k
        sends += [(start + 30.0 * j, sender) for j in range(5 if sender in impatient else 1)]
    for i, (at, sender) in enumerate(sorted(sends)):
        admit(state, ledger, msg(1000 + i, sender, PHRASE, at), now=at)
    t = max(at for at, _ in sends)
    outcome: dict[str, str] = {}
    while (deadline := next_deadline(state)) is not None and t < 3 * 86400:
        t = max(t, deadline)
        for item in release(state, ledger, now=t):
            outcome[item.message.sender] = item.decision.rule
    assert {outcome[s] for s in viewers if s not in impatient} == {"released"}
    assert {outcome[s] for s in impatient} == {"repeat_flood"}


@pytest.mark.parametrize("text", ["🖕", "Connasse", "", "!!!"])
def test_a_short_text_sent_again_and_again_while_held_floods_as_a_long_one_does(
        text: str) -> None:
    """A text too short for a template (an emoji, one insult, nothing) sent five times
    while held was never a paste of its own: only the 12-message rule could catch it, and
    a crowd of numbers doing just that was answered in full once released."""
    state, ledger = PolicyState(), MemoryLedger()
    rng = random.Random(15)
    t = _surge(state, ledger, rng)
    crowd = [number(rng) for _ in range(30)]
    once = number(rng)  # sends the same short text once, then writes on: a person
    sends = [(t + 5.0 * k + 30.0 * j, sender, text)
             for k, sender in enumerate(crowd) for j in range(5)]
    sends += [(t + 1.0, once, text), (t + 40.0, once, "allô ?"), (t + 80.0, once, "tu es là ?")]
    for i, (at, sender, body) in enumerate(sorted(sends)):
        admit(state, ledger, msg(1000 + i, sender, body, at), now=at)
    t = max(at for at, _, _ in sends)
    outcome: dict[str, str] = {}
    while (deadline := next_deadline(state)) is not None and t < 3 * 86400:
        t = max(t, deadline)
        for item in release(state, ledger, now=t):
            outcome[item.message.sender] = item.decision.rule
    assert {outcome[s] for s in crowd} == {"repeat_flood"}
    assert outcome[once] == "released"


def test_number_block_needs_corroboration() -> None:
    """Consecutive numbers alone are not enough; with echoed texts they are."""
    state = PolicyState(PolicyConfig(surge=Surge(enabled=False)))
    bodies = [f"Bonjour numéro {i}, qui est là" for i in range(6)]
    people = ["Salut c'est Marc du concert", "Bonsoir, on s'est vus au marché ce matin",
              "Hello, Julie m'a passé ton numéro", "Coucou, tu te souviens de moi ?",
              "Bonjour, c'est Karim, le voisin du dessus", "Yo c'est Tom, soirée samedi ?"]
    plain = [decide(state, msg(i, f"+3375550{i:04d}", people[i], float(i)), now=float(i))
             for i in range(6)]
    assert all(d.is_reply for d in plain)
    state = PolicyState(PolicyConfig(surge=Surge(enabled=False)))
    echoed = [decide(state, msg(i, f"+3375550{i:04d}", "Salut la féminazie, on va te ruiner "
                                "ton forfait " + bodies[0], float(i)), now=float(i))
              for i in range(16)]
    # a dozen colleagues on a company range are an office; more than that is a rented range
    assert not any(d.rule == "number_block" for d in echoed[:12])
    assert any(d.rule == "number_block" for d in echoed[12:])


def test_same_inputs_same_decisions() -> None:
    """Two states fed the same messages decide the same, rule for rule."""
    def run() -> list[tuple[str, str]]:
        state, ledger, rng = PolicyState(), MemoryLedger(), random.Random(5)
        out = []
        for i in range(2000):
            t = i * 1.5
            body = COPYPASTA if rng.random() < 0.5 else f"Message {rng.random()}"
            d = admit(state, ledger, msg(i, number(rng), body, t), now=t)
            out.append((d.action.value, d.rule))
        return out

    assert run() == run()


def test_sender_memory_is_light_on_the_garbage_collector() -> None:
    """A raid brings a new sender with most messages, and the responder's full garbage
    collections pause its event loop for as long as they scan: after a collection, the
    policy's memory of a sender is at most two tracked objects (the sender, and the set of
    phrases it used), whatever it sent and whether it got a reply."""
    state, ledger = PolicyState(), MemoryLedger()
    for i in range(300):
        t = float(i)
        sender = f"+3361234{i % 100:04d}"  # each sender writes three times
        admit(state, ledger, msg(i, sender, f"Bonsoir, je vous ai vu au journal de {i}h", t),
              now=t)
    gc.collect()
    assert len(state.senders) == 100
    assert any(s.replies for s in state.senders.values())
    assert all(len(s.recent) == 3 for s in state.senders.values())
    tracked = [
        sum(gc.is_tracked(obj) for obj in (s, s.recent, s.replies, s.reply_ids, s.frags,
                                           s.templates, s.repeated))
        for s in state.senders.values()
    ]
    assert max(tracked) <= 2


def test_a_flooding_sender_is_remembered_in_bounded_memory() -> None:
    """A raider who sends thousands of messages within the repeat window is remembered
    by as many times as any rule counts, not by all of them (a million-message raid
    would otherwise hold every time, and copy a growing tuple per message)."""
    state, ledger = PolicyState(), MemoryLedger()
    flooder = "+33612345678"
    rules = []
    for i in range(3000):
        t = i * 0.5
        rules.append(admit(state, ledger, msg(i, flooder, f"spam {i}", t), now=t).rule)
    sender = state.senders[flooder]
    assert sender.count == 3000
    assert len(sender.recent) == state.recent_cap < 10
    assert sender.recent == tuple(i * 0.5 for i in range(3000 - state.recent_cap, 3000))
    assert rules[0] == "first_contact" and set(rules[1:]) == {"sender_limit"}


def test_policy_package_does_no_io_and_reads_no_clock() -> None:
    """responder/policy imports nothing that reads clocks, randomness or the network."""
    banned = {"time", "datetime", "random", "socket", "httpx", "asyncio", "os", "sqlite3"}
    for path in Path("responder/policy").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            assert not banned & set(names), f"{path} imports {banned & set(names)}"


def test_policy_file_errors_name_the_line(tmp_path: Path) -> None:
    """A typo in a policy file names the file, the line and the known keys."""
    bad = tmp_path / "policy.toml"
    bad.write_text("[budget]\ntotal_eur = \"100\"\nper_hour = \"10\"\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        PolicyConfig.load(bad)
    assert f"{bad}:3:" in str(err.value)
    assert "per_hour_eur" in str(err.value)
    bad.write_text("[budget]\ntotal_eur = 0.16\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="string"):
        PolicyConfig.load(bad)


def test_a_policy_file_that_is_not_utf8_names_its_line(tmp_path) -> None:
    """RAIDSIM_POLICY_FILE and --policy read through PolicyConfig.load: no traceback."""

    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[surge]\nfactor = 4.0\n# caf\xe9\n')
    with pytest.raises(ConfigError, match=r"latin1\.toml:3: policy file is not UTF-8"):
        PolicyConfig.load(path)


def test_rules_lists_every_rule_a_decision_can_name() -> None:
    """``RULES`` (what the evidence export accepts, what reports may see) holds every rule
    name the engine writes into a Decision, and ``RAID_RULES`` every raid-evidence rule
    ``_suspicion`` gives: a new rule that is not listed fails here."""
    from responder.policy import RAID_RULES, RULES, ReserveStatus, engine

    tree = ast.parse(Path(engine.__file__).read_text(encoding="utf-8"))
    named: set[str] = set()
    suspicion: set[str] = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "Decision"
                and node.args and isinstance(node.args[0], ast.Constant)):
            named.add(node.args[0].value)
        if isinstance(node, ast.FunctionDef) and node.name == "_suspicion":
            suspicion = {r.value.value for r in ast.walk(node)
                         if isinstance(r, ast.Return) and isinstance(r.value, ast.Constant)
                         and isinstance(r.value.value, str)}
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and any(isinstance(t, ast.Name) and t.id == "rule" for t in node.targets)):
            named.add(node.value.value)
    assert len(named) >= 15 and len(suspicion) == 6
    assert named | suspicion <= RULES
    assert suspicion == set(RAID_RULES)
    refusals = {engine._REFUSAL_RULE.get(s, str(s)) for s in ReserveStatus
                if s is not ReserveStatus.OK}
    assert refusals <= RULES


@pytest.mark.parametrize(("section", "key", "value", "problem"), [
    ("surge", "window", '"0s"', "more than 0"),
    ("surge", "baseline_halflife", "0", "more than 0"),
    ("templates", "halflife", '"0m"', "more than 0"),
    ("fragments", "halflife", "0", "more than 0"),
    ("habit", "halflife", '"0h"', "more than 0"),
    ("number_blocks", "strip_digits", "0", "at least 1"),
    ("number_blocks", "strip_digits", "20", "at most 8"),
    ("sender_limit", "replies", "0", "at least 1"),
    ("templates", "similarity", "2", "between 0 and 1"),
    ("surge", "genuine_below", "5", "between 0 and 1"),
    ("surge", "observe", '"0s"', "at least 1 s"),
    ("surge", "observe", "1e-12", "at least 1 s"),
    ("surge", "window", "1e-300", "at least 1 s"),
    # a flood of 0 messages dropped every sender; 0 senders made everything hot at once
    ("repeats", "max_messages", "0", "at least 1"),
    ("templates", "hot_senders", "0", "at least 1"),
    ("fragments", "hot_senders", "0", "at least 1"),
    ("number_blocks", "hot_senders", "-2", "at least 1"),
])
def test_policy_values_out_of_range_name_the_line(tmp_path: Path, section: str, key: str,
                                                  value: str, problem: str) -> None:
    """A zero window or half-life used to crash every decision (ZeroDivisionError, exit 3);
    strip_digits = 0 put every sender in one block; a share above 1 disabled a rule; an
    observe of 0 (or below a float's step) re-held replies at the same instant forever."""
    bad = tmp_path / "policy.toml"
    bad.write_text(f"[{section}]\n{key} = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=problem) as err:
        PolicyConfig.load(bad)
    assert f"{bad}:2:" in str(err.value)


@pytest.mark.parametrize(("line", "problem", "fix"), [
    ('min_words = "5"', "must be a whole number, got '5'", "write min_words = 3"),
    ("similarity = true", "must be a number, got True", "write similarity = 0.5"),
    ('enabled = "yes"', "must be true or false, got 'yes'", "write enabled = true"),
    ("min_words = -1", "cannot be negative, got -1", "write 0 or more"),
    ("similarity = nan", "must be a finite number, got nan", "write similarity = 0.5"),
    ('halflife = "  "', "empty duration", 'write halflife = "20m"'),
])
def test_a_policy_value_of_the_wrong_type_says_how_to_write_it(
        tmp_path: Path, line: str, problem: str, fix: str) -> None:
    """Every policy value error carries a hint with the fix, in words, not Python's type
    names ("must be int")."""
    bad = tmp_path / "policy.toml"
    bad.write_text(f"[templates]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        PolicyConfig.load(bad)
    assert f"{bad}:2: policy" not in str(err.value)  # no prefix for a standalone file
    assert f"{bad}:2: templates." in str(err.value)
    assert problem in str(err.value) and f"(hint: {fix}" in str(err.value)


def test_a_policy_file_that_mixes_policy_tables_with_top_level_ones_is_refused(
        tmp_path: Path) -> None:
    """``[budget]`` above ``[policy.surge]``: the file was read as its [policy] table alone,
    and the budget cap was dropped without a word (spend went past it)."""
    mixed = tmp_path / "mixed.toml"
    mixed.write_text('[budget]\ntotal_eur = "0.20"\n\n[policy.surge]\nenabled = false\n',
                     encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        PolicyConfig.load(mixed)
    assert str(caught.value) == (
        f"{mixed}:1: the file mixes [policy] tables with top-level keys (budget): the "
        "top-level ones would be ignored (hint: write the whole file one way: top-level keys "
        "and tables ([budget]), or all of it under [policy] ([policy.budget]))")
    whole = tmp_path / "whole.toml"  # either way alone is read as before
    whole.write_text('[policy.budget]\ntotal_eur = "0.20"\n', encoding="utf-8")
    assert PolicyConfig.load(whole).budget.total_micros == 200_000
