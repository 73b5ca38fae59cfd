"""PNG plots of a results JSON (matplotlib, Agg backend, no pyplot global state).

Each ``plot_*`` takes the results mapping and returns PNG bytes. A plot whose data is
absent still renders, with its title, axes and a "no data" note naming the missing key,
so a partial results file (the live replay, an old simulator) never crashes a report.
Output is deterministic: fixed size and DPI, and no software/date metadata in the PNG.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reports.thresholds import to_decimal

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 4.6, 110
MAX_POINTS = 400
NICE_FACTORS = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)

CLASS_COLOURS = {"legit": "#2a7d3f", "raid": "#c0392b", "unlabelled": "#7f8c8d"}
RAID_MODE_COLOUR = "#f5b041"


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    fig.subplots_adjust(left=0.085, right=0.985, top=0.93, bottom=0.11)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3)
    return fig, ax


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _no_data(ax: Axes, what: str, note: str = "no data") -> None:
    ax.text(0.5, 0.5, f"{note}\n(results have no {what})", ha="center", va="center",
            transform=ax.transAxes, fontsize=13, color="#555555",
            bbox={"boxstyle": "round", "facecolor": "#f4f4f4", "edgecolor": "#bbbbbb"})
    ax.set_xticks([])
    ax.set_yticks([])


def _get(mapping: Any, *path: str) -> Any:
    node = mapping
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _numbers(values: Any) -> list[float] | None:
    """A JSON list of numbers/nulls as floats (null -> NaN); None if not such a list."""
    if not isinstance(values, list) or not values:
        return None
    out: list[float] = []
    for value in values:
        if value is None:
            out.append(math.nan)
            continue
        number = to_decimal(value)
        if number is None:
            return None
        out.append(float(number))
    return out


def _bin_s(results: Mapping[str, Any]) -> float:
    value = to_decimal(_get(results, "timeseries", "bin_s"))
    return float(value) if value is not None and value > 0 else 60.0


def _start_s(results: Mapping[str, Any]) -> float:
    """Where slot 0 of the series begins: ``timeseries.start_s`` (``raidsim load``: the
    minute of the first webhook, in trace time), else 0 (``raidsim simulate``)."""
    value = to_decimal(_get(results, "timeseries", "start_s"))
    start = float(value) if value is not None and value.is_finite() else 0.0
    return start if math.isfinite(start) else 0.0


class _TimeAxis:
    """Seconds since start -> minutes, hours or days, whichever reads best for the span."""

    def __init__(self, span_s: float, start_s: float = 0.0) -> None:
        self.start_s = start_s
        if span_s <= 3 * 3600:
            self.unit, self.scale = "min", 60.0
        elif span_s <= 3 * 86400:
            self.unit, self.scale = "h", 3600.0
        else:
            self.unit, self.scale = "days", 86400.0

    @property
    def label(self) -> str:
        if self.start_s:  # a live window: slot 0 starts at this trace time
            return f"time since t = {self.start_s:,.0f} s of the trace ({self.unit})"
        return f"time since start ({self.unit})"

    def __call__(self, seconds: float) -> float:
        return seconds / self.scale


def _rebin_factor(bins: int) -> int:
    for factor in NICE_FACTORS:
        if bins / factor <= MAX_POINTS:
            return factor
    return math.ceil(bins / MAX_POINTS)


def _rebin_sum(values: Sequence[float], factor: int) -> list[float]:
    if factor == 1:
        return list(values)
    return [math.fsum(v for v in values[i:i + factor] if not math.isnan(v))
            for i in range(0, len(values), factor)]


def _per_minute_steps(values: Sequence[float], factor: int, bins: int, bin_s: float,
                      axis: _TimeAxis) -> tuple[list[float], list[float]]:
    """Counts per bin -> (xs, per-minute rates) for a ``where="post"`` step line.

    Every chunk of ``factor`` bins is averaged over the time it really covers (the last
    chunk may be shorter), and the last value is repeated at the end of the run, so the
    last bin, and a run of one bin, are drawn rather than left off.
    """
    padded = list(values) + [0.0] * (bins - len(values))
    summed = _rebin_sum(padded, factor)
    xs: list[float] = []
    rates: list[float] = []
    for index, total in enumerate(summed):
        start = index * factor
        width_s = (min(start + factor, bins) - start) * bin_s
        xs.append(axis(start * bin_s))
        rates.append(total * 60.0 / width_s)
    xs.append(axis(bins * bin_s))
    rates.append(rates[-1])
    return xs, rates


def _bin_label(bin_s: float) -> str:
    minutes = bin_s / 60
    if minutes < 1:
        return f"{bin_s:g}-s bins"
    if minutes < 120:
        return f"{minutes:g}-min bins"
    return f"{minutes / 60:g}-h bins"


def _shade_raid_mode(ax: Axes, results: Mapping[str, Any], axis: _TimeAxis) -> bool:
    spans = _get(results, "timeseries", "raid_mode")
    if not isinstance(spans, list):
        return False
    shaded = False
    for span in spans:
        if not (isinstance(span, list | tuple) and len(span) == 2):
            continue
        start, end = to_decimal(span[0]), to_decimal(span[1])
        if start is None or end is None or end <= start:
            continue
        offset = _start_s(results)
        ax.axvspan(axis(float(start) - offset), axis(float(end) - offset),
                   color=RAID_MODE_COLOUR, alpha=0.25,
                   label=None if shaded else "raid mode on", zorder=0)
        shaded = True
    return shaded


def _legend(ax: Axes, **kwargs: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, **kwargs)


# --------------------------------------------------------------------------- the plots


def _finish_time_plot(fig: Figure, ax: Axes, results: Mapping[str, Any], axis: _TimeAxis,
                      end_s: float, ylabel: str, where: str = "upper left",
                      **legend: Any) -> bytes:
    """The common end of a plot over time: raid mode shaded, axes labelled, from zero."""
    _shade_raid_mode(ax, results, axis)
    ax.set_xlabel(axis.label)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_xlim(0, axis(end_s))
    _legend(ax, loc=where, **legend)
    return _png(fig)


def plot_inbound(results: Mapping[str, Any]) -> bytes:
    """Inbound messages per minute by class (legit/raid), raid-mode periods shaded."""
    fig, ax = _figure()
    ax.set_title("Inbound messages per minute, by class")
    inbound = _get(results, "timeseries", "inbound")
    series: dict[str, list[float]] = {}
    if isinstance(inbound, Mapping):
        for name in CLASS_COLOURS:
            values = _numbers(inbound.get(name))
            if values is not None and any(x > 0 for x in values):
                series[name] = values
    bin_s = _bin_s(results)
    if not series:
        ax.set_xlabel("time since start")
        ax.set_ylabel("messages per minute")
        _no_data(ax, "timeseries.inbound")
        return _png(fig)
    bins = max(len(v) for v in series.values())
    factor = _rebin_factor(bins)
    width_s = bin_s * factor
    axis = _TimeAxis(bins * bin_s, _start_s(results))
    for name, values in series.items():
        xs, per_minute = _per_minute_steps(values, factor, bins, bin_s, axis)
        ax.step(xs, per_minute, where="post", color=CLASS_COLOURS[name], linewidth=1.2,
                label=f"{name} ({int(sum(v for v in values if not math.isnan(v))):,} total)")
    ylabel = f"messages per minute (mean over {_bin_label(width_s)})"
    return _finish_time_plot(fig, ax, results, axis, bins * bin_s, ylabel)


def plot_spend(results: Mapping[str, Any]) -> bytes:
    """Cumulative spend against naive spend, oracle spend and the budget cap."""
    fig, ax = _figure()
    ax.set_title("Cumulative spend vs naive (reply to all), oracle and budget cap")
    timeseries = _get(results, "timeseries")
    lines = (
        ("spend_eur", "this policy", "#1f5fa8", "-"),
        ("naive_spend_eur", "naive: one reply per message", "#c0392b", "--"),
        ("oracle_spend_eur", "oracle: one reply per legit sender", "#2a7d3f", ":"),
    )
    bin_s = _bin_s(results)
    drawn = {key: _numbers(_get(timeseries, key)) for key, *_ in lines}
    if drawn["spend_eur"] is None:
        ax.set_xlabel("time since start")
        ax.set_ylabel("cumulative spend (€)")
        _no_data(ax, "timeseries.spend_eur")
        return _png(fig)
    bins = max(len(v) for v in drawn.values() if v is not None)
    axis = _TimeAxis(bins * bin_s, _start_s(results))
    for key, label, colour, style in lines:
        values = drawn[key]
        if values is None:
            continue
        total = to_decimal(results.get(key))
        suffix = f" (€{total:,.2f})" if total is not None else ""
        # Cumulative value at the END of each bin: x = (i + 1) * bin_s, from 0 at t=0.
        xs = [0.0] + [axis((i + 1) * bin_s) for i in range(len(values))]
        ax.plot(xs, [0.0, *values], color=colour, linestyle=style, linewidth=1.8,
                label=label + suffix)
    cap = to_decimal(_get(results, "budget", "cap_eur"))
    if cap is not None:
        ax.axhline(float(cap), color="#6c3483", linestyle="-.", linewidth=1.4,
                   label=f"budget cap (€{cap:,.2f})")
    exhausted = to_decimal(_get(results, "budget", "exhausted_at_s"))
    if exhausted is not None:
        ax.axvline(axis(float(exhausted) - _start_s(results)), color="#6c3483", linewidth=1.0,
                   label="budget exhausted")
    # room above the highest line (the cap sat on the top edge), and the legend where it
    # hides the fewest lines: in the upper left it covered the cap line
    top = max([max(v) for v in drawn.values() if v] + [float(cap) if cap is not None else 0.0])
    if top > 0 and math.isfinite(top):
        ax.set_ylim(top=top * 1.12)
    return _finish_time_plot(fig, ax, results, axis, bins * bin_s, "cumulative spend (€)",
                             where="best")


def plot_latency(results: Mapping[str, Any]) -> bytes:
    """Reply latency percentiles (p50, p95, p99) over time, per bin."""
    fig, ax = _figure()
    ax.set_title("Reply latency to legit senders: percentiles per time bin")
    latency = _get(results, "timeseries", "reply_latency_s")
    styles = (("p50", "#1f5fa8"), ("p95", "#e67e22"), ("p99", "#c0392b"))
    series = {}
    if isinstance(latency, Mapping):
        for name, _ in styles:
            values = _numbers(latency.get(name))
            if values is not None and any(not math.isnan(v) for v in values):
                series[name] = values
    if not series:
        ax.set_xlabel("time since start")
        ax.set_ylabel("reply latency (s)")
        if isinstance(latency, Mapping) and any(
                _numbers(latency.get(name)) is not None for name, _ in styles):
            # The series are there, every bin empty: no legit sender got a reply.
            _no_data(ax, "reply to a legit sender", note="no replies")
        else:
            _no_data(ax, "timeseries.reply_latency_s")
        return _png(fig)
    bin_s = _bin_s(results)
    bins = max(len(v) for v in series.values())
    axis = _TimeAxis(bins * bin_s, _start_s(results))
    positive = [v for values in series.values() for v in values if v > 0]
    log_scale = bool(positive) and max(positive) / min(positive) > 50
    # A reply that left at once has latency 0: on a log scale draw it at a floor below
    # every positive value instead of dropping it (most bins of a calm run are 0 s).
    floor = min(min(positive) / 2, 0.001) if positive else 0.001
    for name, colour in styles:
        if name not in series:
            continue
        values = [math.nan if math.isnan(v) else (v if v > 0 or not log_scale else floor)
                  for v in series[name]]
        xs = [axis((i + 0.5) * bin_s) for i in range(len(values))]
        overall = to_decimal(_get(results, "reply_latency_s", name))
        suffix = f" (whole run {_seconds(overall)})" if overall is not None else ""
        ax.plot(xs, values, color=colour, linewidth=0.9, marker=".", markersize=2,
                label=name + suffix)
    _shade_raid_mode(ax, results, axis)
    ax.set_xlabel(axis.label)
    if log_scale:
        # Held replies wait hours while the others leave in seconds: a log scale shows both.
        ax.set_yscale("log")
        ax.set_ylabel(f"reply latency (s, log scale; 0 s drawn at {floor:.3g} s), "
                      f"per {_bin_label(bin_s)[:-1]}")
    else:
        ax.set_ylabel(f"reply latency (s), per {_bin_label(bin_s)[:-1]}")
        ax.set_ylim(bottom=0)
    ax.set_xlim(0, axis(bins * bin_s))
    _legend(ax, loc="upper left")
    return _png(fig)


def _seconds(value: Decimal) -> str:
    return f"{value:,.0f} s" if abs(value) >= 100 else f"{float(value):.3g} s"


def plot_decisions(results: Mapping[str, Any]) -> bytes:
    """Decisions by rule over time, stacked."""
    fig, ax = _figure()
    ax.set_title("Decisions by rule over time (stacked)")
    decisions = _get(results, "timeseries", "decisions")
    series: dict[str, list[float]] = {}
    if isinstance(decisions, Mapping):
        for rule in decisions:
            values = _numbers(decisions[rule])
            if values is not None and any(v > 0 for v in values):
                series[str(rule)] = [0.0 if math.isnan(v) else v for v in values]
    if not series:
        ax.set_xlabel("time since start")
        ax.set_ylabel("decisions per minute")
        _no_data(ax, "timeseries.decisions")
        return _png(fig)
    bin_s = _bin_s(results)
    bins = max(len(v) for v in series.values())
    factor = _rebin_factor(bins)
    width_s = bin_s * factor
    axis = _TimeAxis(bins * bin_s, _start_s(results))
    # Largest rule at the bottom; ties broken by name so the colours are stable.
    order = sorted(series, key=lambda rule: (-sum(series[rule]), rule))
    steps = [_per_minute_steps(series[rule], factor, bins, bin_s, axis) for rule in order]
    xs = steps[0][0]
    stacked = [rates for _xs, rates in steps]
    palette = _palette(len(order))
    ax.stackplot(xs, *stacked, step="post", colors=palette,
                 labels=[f"{rule} ({int(sum(series[rule])):,})" for rule in order])
    ylabel = f"decisions per minute (mean over {_bin_label(width_s)})"
    return _finish_time_plot(fig, ax, results, axis, bins * bin_s, ylabel,
                             fontsize="small", ncols=2 if len(order) > 6 else 1)


def _palette(count: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def plot_senders(results: Mapping[str, Any]) -> bytes:
    """Messages per sender, log-log: how many senders sent k messages, by class."""
    fig, ax = _figure()
    ax.set_title("Messages per sender (log-log)")
    histograms = _get(results, "senders", "messages_per_sender")
    drawn = False
    if isinstance(histograms, Mapping):
        for name in sorted(histograms, key=lambda n: (n not in CLASS_COLOURS, str(n))):
            points = _histogram(histograms[name])
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            senders = int(sum(ys))
            ax.plot(xs, ys, marker="o", markersize=4, linewidth=1.0,
                    color=CLASS_COLOURS.get(str(name)), label=f"{name} ({senders:,} senders)")
            drawn = True
    ax.set_xlabel("messages sent by one sender (count, log scale)")
    ax.set_ylabel("senders (count, log scale)")
    if not drawn:
        _no_data(ax, "senders.messages_per_sender")
        return _png(fig)
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import LogFormatter

    for scale in (ax.xaxis, ax.yaxis):  # counts as counts (3, 200), not "3×10^0"
        scale.set_major_formatter(LogFormatter(labelOnlyBase=False))
        scale.set_minor_formatter(LogFormatter(labelOnlyBase=False,
                                               minor_thresholds=(1.5, 0.5)))
    _legend(ax, loc="upper right")
    return _png(fig)


def _histogram(raw: Any) -> list[tuple[float, float]]:
    if not isinstance(raw, Mapping):
        return []
    points: list[tuple[float, float]] = []
    for key, count in raw.items():
        try:
            messages = Decimal(str(key))
        except ArithmeticError:
            continue
        senders = to_decimal(count)
        if senders is not None and senders > 0 and messages.is_finite() and messages > 0:
            points.append((float(messages), float(senders)))
    return sorted(points)


# Name in the report -> (file name, caption, renderer). Order is the order in the report.
PLOTS: tuple[tuple[str, str, Callable[[Mapping[str, Any]], bytes]], ...] = (
    ("inbound.png", "Inbound messages per minute by class, raid mode shaded", plot_inbound),
    ("spend.png", "Cumulative spend vs naive, oracle and budget cap", plot_spend),
    ("latency.png", "Reply latency percentiles over time", plot_latency),
    ("decisions.png", "Decisions by rule over time, stacked", plot_decisions),
    ("senders.png", "Messages per sender, log-log", plot_senders),
)


def render_all(results: Mapping[str, Any]) -> list[tuple[str, str, bytes]]:
    """``[(file_name, caption, png_bytes), ...]`` for every plot, in report order.

    Drawn under matplotlib's own defaults, whatever a ``matplotlibrc`` in the working
    directory, ``$MATPLOTLIBRC`` or the user's configuration says: the same results give
    the same bytes wherever the report is made (with the same matplotlib)."""
    from matplotlib import style

    with style.context("default"):
        return [(name, caption, render(results)) for name, caption, render in PLOTS]
