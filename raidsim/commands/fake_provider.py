"""``raidsim fake-provider``: a Twilio-compatible Messages API that bills and injects faults."""

from __future__ import annotations

import argparse
import math
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from raidsim.cli import seed_value

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "fake-provider",
        help="run a Twilio-compatible fake SMS API that bills every reply and injects faults",
        description=(
            "Serve POST /2010-04-01/Accounts/{Sid}/Messages.json like Twilio (Basic auth, "
            "To/From/Body/StatusCallback, 201 JSON with sid, status, num_segments, price), "
            "bill every SMS exactly (GET /_fake/bill), and inject 429/20429, 5xx, read "
            "timeouts and outages, drawn from a seeded random generator. Rates and fault "
            "windows come from a scenario's [provider] and [[faults]] tables, or from flags "
            "(flags win). Started from a scenario, it also answers as slowly as its "
            "[provider] (lognormal latency, segments_per_second), in scenario time; without "
            "one it answers at once unless --latency or --throughput turn that on. Point "
            "the responder at it with RAIDSIM_TWILIO_API_BASE."
        ),
        epilog=(
            "examples:\n"
            "  export RAIDSIM_TWILIO_AUTH_TOKEN=test-auth-token-0123456789  # or --auth-token\n"
            "  raidsim fake-provider --port 8099\n"
            "  raidsim fake-provider scenarios/anti-relous-2017.toml --speed 60 "
            "--offset 5d20h\n"
            "  raidsim fake-provider --rate-limit-rate 0.2 --outage 30s+20s --seed 7\n"
            "  raidsim fake-provider --latency-median 300ms --latency-p95 2s "
            "--segments-per-second 1\n"
            "  raidsim fake-provider scenarios/anti-relous-2017.toml --latency off "
            "--throughput off\n"
            "  curl localhost:8099/_fake/bill\n\n"
            "exit codes: 0 stopped (Ctrl-C or SIGTERM; the bill is printed), 2 usage or "
            "input error, 3 internal error\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", nargs="?", type=Path, metavar="SCENARIO.toml",
                        help="take rates, faults and the price per segment from this scenario")
    parser.add_argument("--host", default="127.0.0.1",
                        help="bind address (default 127.0.0.1; others need --allow-remote)")
    parser.add_argument("--port", type=int, default=8099, help="port (default 8099; 0: any)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a non-loopback --host")
    parser.add_argument("--account-sid", default=None,
                        help="accepted account SID (default $RAIDSIM_TWILIO_ACCOUNT_SID, "
                        "else any AC... SID)")
    parser.add_argument("--auth-token", default=None,
                        help="Basic-auth password the responder sends; required, here or "
                        "as $RAIDSIM_TWILIO_AUTH_TOKEN")
    parser.add_argument("--eur-per-segment", default=None, metavar="EUR",
                        help="price of one segment (default: the scenario's, else 0.16)")
    parser.add_argument("--seed", type=seed_value, default=None, metavar="N",
                        help="seed of the fault draws, 0 or more (default: the scenario's, "
                        "else 0)")
    for name, what in (("error-rate", "5xx answers"), ("rate-limit-rate", "429/20429 answers"),
                       ("timeout-rate", "answers held past the read timeout (billed)"),
                       ("reject-rate", "400/21610 refusals")):
        parser.add_argument(f"--{name}", type=float, default=None, metavar="P",
                            help=f"share of requests getting {what}, from 0 to 1 "
                            "(default: the scenario's provider rate, else 0)")
    parser.add_argument("--retry-after", default=None, metavar="DURATION",
                        help="Retry-After of 429 answers (default 1s)")
    parser.add_argument("--error-status", type=int, default=503,
                        help="status of injected 5xx (default 503: safe to retry; 500, 502 "
                        "and 504 leave the sender unsure)")
    parser.add_argument("--timeout-delay", default="30s", metavar="DURATION",
                        help="how late a 'timeout' answer comes (default 30s)")
    parser.add_argument("--no-status-callbacks", dest="status_callbacks",
                        action="store_false",
                        help="do not POST the signed sent/delivered callbacks to the "
                        "StatusCallback URL a request names (Twilio does; so does the fake "
                        "by default)")
    parser.add_argument("--outage", action="append", default=[], metavar="START+DURATION",
                        help="a full outage window in scenario time, e.g. 5d21h+20m (repeatable)")
    parser.add_argument("--outage-mode", choices=("refuse", "503"), default="refuse",
                        help="refuse connections (default) or answer 503 during outages")
    parser.add_argument("--latency", choices=("on", "off"), default=None,
                        help="answer after the provider's lognormal latency (default: on "
                        "with a scenario or a --latency-* flag, else off)")
    parser.add_argument("--latency-median", default=None, metavar="DURATION",
                        help="median answer time in scenario time (default: the scenario's, "
                        "else 250ms); turns --latency on")
    parser.add_argument("--latency-p95", default=None, metavar="DURATION",
                        help="95th percentile of the answer time, at least the median "
                        "(default: the scenario's, else 900ms); turns --latency on")
    parser.add_argument("--throughput", choices=("on", "off"), default=None,
                        help="queue requests to at most --segments-per-second (default: on "
                        "with a scenario or --segments-per-second, else off: unlimited)")
    parser.add_argument("--segments-per-second", type=float, default=None, metavar="N",
                        help="segments the provider takes per scenario second, above 0 "
                        "(default: the scenario's, else 10); turns --throughput on")
    parser.add_argument("--speed", type=float, default=1.0, metavar="X",
                        help="scenario seconds per wall second for fault windows, latency "
                        "and throughput (default 1)")
    parser.add_argument("--offset", default="0s", metavar="DURATION",
                        help="scenario time at start-up (default 0s)")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Any:
    """Resolve flags, environment and scenario into a ``FakeProviderConfig``."""
    from dataclasses import replace

    from raidsim.cli import UsageError, duration_flag
    from responder.policy.errors import ConfigError
    from responder.policy.units import parse_duration_text
    from scenarios.fake_provider import CLEAN, FakeProviderConfig
    from sim.provider import Fault, outcome_shares_problem, parse_faults, parse_provider

    env = os.environ if environ is None else environ
    model = CLEAN
    faults: list[Fault] = []
    price = Decimal("0.16")
    seed = 0
    if args.scenario is not None:
        from sim.scenario import load_scenario

        try:
            scenario = load_scenario(args.scenario, need_traffic=False)  # no traffic read
            model = parse_provider(scenario.provider, path=scenario.path, text=scenario.text)
            faults = list(parse_faults(scenario.faults, path=scenario.path, text=scenario.text))
        except ConfigError as exc:
            raise UsageError(str(exc)) from exc
        price = scenario.policy.eur_per_segment
        seed = scenario.seed
    changes: dict[str, Any] = {}
    for flag in ("error_rate", "rate_limit_rate", "timeout_rate", "reject_rate"):
        value = getattr(args, flag)
        if value is not None:
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"--{flag.replace('_', '-')} is a share between 0 and 1")
            changes[flag] = value
    if args.retry_after is not None:
        changes["retry_after_s"] = duration_flag("--retry-after", args.retry_after)
    timeout_delay = duration_flag(
        "--timeout-delay", args.timeout_delay,
        above_zero="a timeout answer is held past the responder's read timeout "
        "(RAIDSIM_SEND_READ_TIMEOUT_S, 10 s by default), e.g. --timeout-delay 30s")
    offset = duration_flag("--offset", args.offset)
    for window in args.outage:
        start, plus, length = window.partition("+")
        if not plus:
            raise UsageError(f"--outage {window!r}: write START+DURATION, e.g. 5d21h+20m")
        try:
            begin = parse_duration_text(start)
            span = parse_duration_text(length)
        except ValueError as exc:
            raise UsageError(f"--outage {window!r}: {exc}") from exc
        if span <= 0:
            raise UsageError(f"--outage {window!r}: the duration must be above 0, "
                             "e.g. 5d21h+20m")
        faults.append(Fault("outage", begin, begin + span, 1.0))
    latency_on, throughput_on = _shaping(args, changes, scenario=args.scenario is not None)
    shaped = replace(model, **changes)
    if latency_on and shaped.latency_median_s == 0 < shaped.latency_p95_s:
        raise UsageError(f"--latency-median 0 answers every call at once, whatever the p95 "
                         f"({shaped.latency_p95_s:g} s) (hint: give a median above 0, e.g. "
                         "250ms, or --latency off for an instant provider)")
    if latency_on and shaped.latency_p95_s < shaped.latency_median_s:
        raise UsageError(f"the latency p95 ({shaped.latency_p95_s:g} s) is below its median "
                         f"({shaped.latency_median_s:g} s) (hint: give --latency-p95 with "
                         "--latency-median; equal values give every answer the same latency)")
    problem = outcome_shares_problem(replace(model, **changes))
    if problem is not None:
        raise UsageError(f"{problem} (hint: each request has one outcome; lower the "
                         "--*-rate flags or the scenario's [provider] rates)")
    if args.eur_per_segment is not None:
        from responder.policy.money import MoneyError, from_micros, to_micros

        try:  # plain digits, at most 6 decimals, as every price raidsim reads
            price = from_micros(to_micros(args.eur_per_segment))
        except MoneyError as exc:
            raise UsageError(f"--eur-per-segment {args.eur_per_segment!r}: {exc}") from exc
        if price < 0:
            raise UsageError(f"--eur-per-segment {args.eur_per_segment} cannot be negative "
                             "(hint: a price such as 0.16)")
        from responder.policy.config import MAX_PRICE_MICROS

        if to_micros(price) > MAX_PRICE_MICROS:
            raise UsageError(f"--eur-per-segment {args.eur_per_segment} is more than "
                             f"€{MAX_PRICE_MICROS // 1_000_000:,} a segment (hint: a price "
                             "such as 0.16)")
    if not (math.isfinite(args.speed) and args.speed > 0):
        raise UsageError(f"--speed must be a number above 0, got {args.speed} (hint: "
                         "scenario seconds per wall second, e.g. --speed 60)")
    account_sid = args.account_sid or env.get("RAIDSIM_TWILIO_ACCOUNT_SID") or None
    if account_sid is not None:  # as `raidsim serve` checks it: a SID no responder could send
        from responder.config import check_account_sid

        try:
            check_account_sid(account_sid, "--account-sid" if args.account_sid
                              else "RAIDSIM_TWILIO_ACCOUNT_SID")
        except ConfigError as exc:
            raise UsageError(str(exc)) from exc
    token = args.auth_token or env.get("RAIDSIM_TWILIO_AUTH_TOKEN")
    if not token:
        raise UsageError("give --auth-token or set RAIDSIM_TWILIO_AUTH_TOKEN (the password "
                         "the responder sends)")
    try:
        return FakeProviderConfig(
            auth_token=token,
            account_sid=account_sid,
            eur_per_segment=price,
            model=replace(model, **changes),
            faults=tuple(faults),
            outage_mode=args.outage_mode,
            error_status=args.error_status,
            timeout_delay_s=timeout_delay,
            status_callbacks=args.status_callbacks,
            seed=seed if args.seed is None else args.seed,
            speed=args.speed,
            offset_s=offset,
            latency=latency_on,
            throughput=throughput_on,
        )
    except ValueError as exc:  # includes MoneyError
        # the config's own words name its fields (error_status): name the flags
        raise UsageError(str(exc).replace("error_status", "--error-status")
                         .replace("outage_mode", "--outage-mode")) from exc


def _shaping(args: argparse.Namespace, changes: dict[str, Any], *,
             scenario: bool) -> tuple[bool, bool]:
    """Whether latency and throughput apply; their flags' values go into ``changes``."""
    from raidsim.cli import UsageError, duration_flag

    given_latency = []
    for flag in ("latency_median", "latency_p95"):
        text = getattr(args, flag)
        if text is None:
            continue
        name = f"--{flag.replace('_', '-')}"
        value = duration_flag(name, text)
        if not math.isfinite(value):
            raise UsageError(f"{name} {text!r} is not a finite duration (hint: e.g. 250ms)")
        changes[f"{flag}_s"] = value
        given_latency.append(name)
    if args.latency == "off" and given_latency:
        raise UsageError(f"--latency off contradicts {given_latency[0]} (hint: leave one out)")
    rate = args.segments_per_second
    if rate is not None:
        from sim.provider import MIN_SEGMENTS_PER_SECOND

        if not (math.isfinite(rate) and rate >= MIN_SEGMENTS_PER_SECOND):
            raise UsageError(f"--segments-per-second must be a finite number of at least "
                             f"{MIN_SEGMENTS_PER_SECOND:g}, got {rate:g} (hint: a long code "
                             "takes about 1, a short code about 100)")
        if args.throughput == "off":
            raise UsageError("--throughput off contradicts --segments-per-second (hint: "
                             "leave one out)")
        changes["segments_per_second"] = rate
    latency = args.latency == "on" or bool(given_latency) or (
        scenario and args.latency is None)
    throughput = args.throughput == "on" or rate is not None or (
        scenario and args.throughput is None)
    return latency, throughput


def _shaping_text(config: Any) -> str:
    model = config.model
    latency = (f"latency median {model.latency_median_s:g} s, p95 {model.latency_p95_s:g} s"
               if config.latency else "no latency")
    throughput = (f"{model.segments_per_second:g} segment(s)/s" if config.throughput
                  else "no throughput limit")
    return f"{latency}, {throughput} (scenario time, speed {config.speed:g})"


def run(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from raidsim.cli import UsageError
    from scenarios.fake_provider import FakeProvider, serving

    if args.host not in LOOPBACK and not args.allow_remote:
        raise UsageError(f"--host {args.host} is not loopback; add --allow-remote to expose "
                         "a fake provider to the network")
    if not 0 <= args.port < 65536:
        raise UsageError("--port must be in 0..65535")
    config = config_from_args(args)
    provider = FakeProvider(config)

    listening = False

    async def main() -> None:
        nonlocal listening
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with serving(provider, args.host, args.port) as url:
            listening = True
            model = config.model
            print(f"raidsim fake-provider: listening on {url} (bill: {url}/_fake/bill; "
                  f"EUR {config.eur_per_segment}/segment; rates: errors {model.error_rate}, "
                  f"429 {model.rate_limit_rate}, timeouts {model.timeout_rate}, "
                  f"rejects {model.reject_rate}; {len(config.faults)} fault window(s); "
                  f"{_shaping_text(config)})",
                  file=sys.stderr, flush=True)
            await stop.wait()
        bill = provider.bill.snapshot()
        injected = bill["injected"]
        shaping = "".join(
            f"; {what} p95 {spread['p95']:g} s, max {spread['max']:g} s"
            for what, spread in (("queue wait", injected["queue_wait_s"]),
                                 ("latency", injected["latency_s"])) if spread["count"])
        print(f"raidsim fake-provider: billed {bill['count']} SMS, {bill['segments']} "
              f"segment(s), EUR {bill['amount_eur']}{shaping}", file=sys.stderr)

    try:
        asyncio.run(main())
    except OSError as exc:
        if listening:  # not a bind problem: an error while serving or stopping
            raise
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
                         ) from exc
    return 0
