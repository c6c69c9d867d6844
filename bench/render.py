"""The printed table and the latency-versus-concurrency plot.

Every cell is ``median [lowest-highest]`` over the repeats, so the spread is
never hidden behind a single number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.report import LABELS
from bench.stats import Spread

WIDTH = 52


def _row(name: str, *cells: str) -> str:
    return f"  {name:<{WIDTH}}" + "".join(f"{c:>24}" for c in cells)


def table(
    meta: dict[str, Any],
    cfg: BenchConfig,
    raw: dict[str, Any],
    s: dict[str, Any],
    tg: list[dict[str, Any]],
) -> str:
    """The whole run as text: one section per measurement, then the targets."""
    lines = [
        f"arko bench ({cfg.name}) -- {meta['cpu']}, {meta['cores']} cores, "
        f"Python {meta['python']}, grpcio {meta['grpcio']}, arko {meta['arko_commit']}"
        + (" + uncommitted edits" if meta["arko_tree_dirty"] else "")
        + f" (daemons' arko from {meta['arko_ref']})",
        f"cells: median [low-high] of {cfg.repeats} (latency) / {cfg.throughput_repeats} "
        "(throughput) repeats after warm-up; ratios are paired per repeat",
        f"other processes used {s['foreign_cpu'].median:.0%} of the machine during a timed run "
        f"(median; worst {s['foreign_cpu'].high:.0%})",
        "",
        "1. Sequential dispatch latency, MyPipeline.DryRun (ms)",
        _row("", "p50", "p99"),
    ]
    for label in ("direct", "relay", "master", "master_open", "naive", "celery"):
        lat = s["latency"][label]
        lines.append(_row(LABELS[label], lat["p50_ms"].show(3), lat["p99_ms"].show(3)))
    lr = s["latency_ratios"]
    lines += [
        _row("ratio master/direct", lr["master/direct p50"].show(), lr["master/direct p99"].show()),
        _row(
            "ratio relay/direct (floor)",
            lr["relay/direct p50"].show(),
            lr["relay/direct p99"].show(),
        ),
        _row("ratio master/relay", lr["master/relay p50"].show(), ""),
        _row(
            "ratio master_open/direct",
            lr["master_open/direct p50"].show(),
            lr["master_open/direct p99"].show(),
        ),
        _row("ratio master/celery", lr["master/celery p50"].show(), ""),
        "",
        "2. Throughput (jobs/s) by calls in flight",
    ]
    concurrencies = list(cfg.concurrencies)
    lines.append(_row("", *(f"@{c}" for c in concurrencies)))
    thr = s["throughput"]
    for label in ("direct", "relay", "master", "master_open", "master4", "celery"):
        lines.append(_row(LABELS[label], *(thr[label][c]["rate"].show(0) for c in concurrencies)))
    naive_c = s["naive"]["inflight"]
    lines.append(
        _row(
            LABELS["naive"],
            *(thr["naive"][c]["rate"].show(0) if c == naive_c else "-" for c in concurrencies),
        )
    )
    for name, by_c in s["throughput_ratios"].items():
        lines.append(_row(f"ratio {name}", *(by_c[c].show() for c in concurrencies)))
    lines.append(
        _row(
            "p50 latency (ms), master as shipped",
            *(thr["master"][c]["p50_ms"].show(1) for c in concurrencies),
        )
    )
    lines.append(
        _row(
            "p50 latency (ms) direct", *(thr["direct"][c]["p50_ms"].show(1) for c in concurrencies)
        )
    )
    cpu = s.get("hop_cpu_ms", {})
    if cpu:
        lines += ["", "2b. CPU of the hop process per job (ms, user+system)"]
        lines.append(_row("", "one by one", "@64"))
        for label in ("relay", "master", "master_open"):
            if label in cpu:
                by = cpu[label]
                lines.append(_row(LABELS[label], by["@1"].show(3), by["@64"].show(3)))
        if "hop_cpu_ratios" in s:
            ratios = s["hop_cpu_ratios"]
            lines.append(
                _row(
                    "ratio master/relay",
                    ratios["master/relay @1"].show(),
                    ratios["master/relay @64"].show(),
                )
            )
    peak = s["peak"]
    lines += [
        "",
        "3. Peer: Celery + Redis (peak throughput over the concurrencies above)",
        _row("peak jobs/s master / celery", peak["master"].show(0), peak["celery"].show(0)),
        _row("ratio master/celery peak throughput", s["peak_ratios"]["master/celery"].show(), ""),
        "",
        f"4. Cached dispatch vs naive per-job reflection (@{naive_c} in flight)",
        _row("ratio cached/naive throughput", s["naive"]["cached/naive"].show(), ""),
    ]
    fleet, sf = raw["fleet"], s["fleet"]
    lines += [
        "",
        f"5. Ping sweep: {fleet['slaves']} slaves ({fleet['live']} live, "
        f"{fleet['dead']} dead ports), ping_timeout {cfg.ping_timeout:g} s",
        _row("sweep seconds", sf["sweep_seconds"].show(), ""),
        _row("master CPU seconds per sweep", sf["sweep_cpu_seconds"].show(), ""),
        _row("sweep / ping timeout", sf["sweep_over_timeout"].show(), ""),
        _row("master RSS with this fleet (MB)", f"{fleet['master_rss_mb']:.1f}", ""),
        "",
        f"6. Registration, {cfg.registrants} concurrent registrants",
        _row(
            f"registrations/s, {fleet['slaves']} addresses ({fleet['live']} live), fresh master",
            sf["registration_rate"].show(0),
            f"{sf['registration_errors']} failed",
        ),
    ]
    mem = raw["memory"]
    live = raw.get("memory_live")  # absent from runs before live slaves were measured
    for kind, part in (("dead", mem), ("live", live)):
        if part is not None:
            reg = part["registration"]
            lines.append(
                _row(
                    f"registrations/s, {part['slaves']} {kind} addresses",
                    f"{reg['rate']:.0f}",
                    f"{reg['errors']} failed",
                )
            )
    lines += [
        "",
        "7. Master memory (RSS, MB); dead slaves refuse at once, live ones answer "
        "health and reflection",
        _row("idle", f"{mem['idle_mb']:.1f}", ""),
        _row(
            f"{mem['slaves']} dead slaves registered (peak while registering)",
            f"{mem['registered_mb']:.1f}",
            f"({mem['registration_peak_mb']:.1f})",
        ),
        "  after each slice of jobs (jobs: RSS):",
        "    " + "  ".join(f"{c['jobs'] // 1000}k:{c['rss_mb']:.0f}" for c in mem["chunks"]),
    ]
    for kind, part in (("dead", mem), ("live", live)):
        if part is None:
            continue
        if kind == "live":
            lines.append(
                _row(
                    f"{part['slaves']} live slaves registered (peak while registering)",
                    f"{part['registered_mb']:.1f}",
                    f"({part['registration_peak_mb']:.1f})",
                )
            )
        restart = part["restart_sweep"]
        lines += [
            _row(
                f"master restarted on that db: sweep of {restart['slaves']} {kind} (s)",
                f"{restart['sweep_seconds']:.2f}",
                f"{restart['live']} found live" if "live" in restart else "",
            ),
            _row(
                "RSS peak during that sweep / after it",
                f"{restart['peak_mb']:.1f}",
                f"{restart['after_mb']:.1f}",
            ),
        ]
    if raw.get("profile"):
        prof = raw["profile"]
        lines += [
            "",
            f"8. Master profile under load @64 (py-spy --gil, {prof['samples']} samples, "
            f"{prof['rate_under_profiler']:.0f} jobs/s while sampled): self time",
        ]
        lines += [f"  {p['percent']:5.1f}%  {p['function']}" for p in prof["self"]]
        lines.append("   GIL held by thread:")
        lines += [f"  {t['percent']:5.1f}%  {t['thread']}" for t in prof.get("threads", [])]
        lines.append("   source files on the stack (inclusive):")
        lines += [f"  {f['percent']:5.1f}%  {f['file']}" for f in prof["files"]]
    lines += ["", "Targets (issue 5, then issue 26 against the bare relay)"]
    for t in tg:
        verdict = "PASS" if t["ok"] else "FAIL"
        lines.append(f"  [{verdict}] {t['target']:<58} {t['shown']:>12}   ({t['limit']})")
    return "\n".join(lines)


def plot(cfg: BenchConfig, meta: dict[str, Any], s: dict[str, Any], path: Path) -> None:
    """Latency (p50 solid, p99 dotted) and throughput against calls in flight."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thr = s["throughput"]
    fig, (ax_lat, ax_thr) = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = {
        "direct": "C0",
        "relay": "C7",
        "master": "C1",
        "master_open": "C5",
        "master4": "C2",
        "celery": "C3",
        "naive": "C4",
    }
    for label, color in styles.items():
        cs = sorted(thr[label])
        p50: list[Spread] = [thr[label][c]["p50_ms"] for c in cs]
        p99: list[Spread] = [thr[label][c]["p99_ms"] for c in cs]
        rate: list[Spread] = [thr[label][c]["rate"] for c in cs]
        marker = "s" if len(cs) == 1 else "o"
        ax_lat.errorbar(
            cs,
            [x.median for x in p50],
            yerr=[[x.median - x.low for x in p50], [x.high - x.median for x in p50]],
            color=color,
            marker=marker,
            label=f"{LABELS[label]} p50",
            capsize=3,
        )
        ax_lat.plot(cs, [x.median for x in p99], color=color, linestyle=":", alpha=0.7)
        ax_thr.errorbar(
            cs,
            [x.median for x in rate],
            yerr=[[x.median - x.low for x in rate], [x.high - x.median for x in rate]],
            color=color,
            marker=marker,
            label=LABELS[label],
            capsize=3,
        )
    ax_lat.set(
        xscale="log",
        yscale="log",
        xlabel="calls in flight",
        ylabel="latency (ms): p50 solid, p99 dotted",
        title="Latency vs concurrency",
    )
    ax_thr.set(
        xscale="log", xlabel="calls in flight", ylabel="jobs / s", title="Throughput vs concurrency"
    )
    for ax in (ax_lat, ax_thr):
        ax.set_xticks(list(cfg.concurrencies), [str(c) for c in cfg.concurrencies])
        ax.grid(True, which="both", alpha=0.3)
    ax_thr.set_ylim(bottom=0)
    ax_lat.legend(fontsize=8, loc="upper left")
    fig.suptitle(
        f"arko {meta['arko_commit']}, MyPipeline.DryRun on loopback -- "
        f"{meta['cpu']}, {meta['cores']} cores, "
        f"Python {meta['python']}, grpcio {meta['grpcio']} "
        f"({cfg.name} run, {meta['date_utc'][:10]})",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
