"""Cases ``validate`` and ``connect``: building and checking big flows, no quadratics.

validate: ``flow.validate()`` on a chain of VALIDATE_SIZE routines (a ChainSource,
    then Relays), built outside the timed part. Every run checks that it finds no
    error (the chain is valid). Baseline, on a plain ``networkx.MultiDiGraph``
    with the same nodes and edges (built from an edge list, not from the flow):
    one BFS from the entry (``nx.descendants``, checked to reach every other
    node) and one cycle check (``nx.is_directed_acyclic_graph``).
connect: one source event connected to N slots, on N CountingSink routines added
    beforehand (outside the timed part); the N ``flow.connect`` calls are timed,
    at N = CONNECT_SMALL and CONNECT_LARGE. Every run checks that the flow holds
    N connections. Linear cost makes the large/small ratio about
    CONNECT_LARGE/CONNECT_SMALL (4x); quadratic, its square (16x). Baseline, the
    same N connects as plain dict work: per connect, a duplicate check against a
    dict keyed by (source, event, target, slot), an insert into it, and an append
    to the target list of ``(source, event)`` in a second dict. Both collect
    garbage just before the timed part: otherwise the collection that the N
    routines made in the setup call for (over every object they hold) falls in
    the timed connects, at a point that moves with N, and the ratio measures the
    collector's thresholds rather than connect.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import networkx as nx
from chain import ChainSource, CountingSink, Relay
from common import BenchFailure, Options, Row, check, median, repeat_pair, say
from common import verdict_at_most as at_most

from routilux import Flow

VALIDATE_SIZE = 2_000
CONNECT_SMALL, CONNECT_LARGE = 4_000, 16_000

TARGET_VALIDATE_MS = 50.0  # issue 8
LINEAR = CONNECT_LARGE / CONNECT_SMALL
TARGET_CONNECT_RATIO = LINEAR * 1.25  # issue 8 asks for linear; 25 % for noise


# ---------------------------------------------------------------- validate


def build_chain(size: int) -> Flow:
    flow = Flow(flow_id="bench-validate")
    flow.add_routine(ChainSource(), "r00000")
    for i in range(1, size):
        flow.add_routine(Relay(), f"r{i:05d}")
        flow.connect(f"r{i - 1:05d}", "output", f"r{i:05d}", "input")
    return flow


def routilux_validate(flow: Flow) -> float:
    start = time.perf_counter()
    findings = flow.validate()
    elapsed = time.perf_counter() - start
    errors = [f for f in findings if getattr(f, "severity", "error") == "error"]
    if errors:
        raise BenchFailure(
            f"validate: {len(errors)} errors on a valid chain: {errors[0]}"
        )
    return elapsed


def plain_graph(size: int) -> Any:
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(f"r{i:05d}" for i in range(size))
    graph.add_edges_from(
        (f"r{i - 1:05d}", f"r{i:05d}", ("output", "input")) for i in range(1, size)
    )
    return graph


def plain_validate(graph: Any, size: int) -> float:
    start = time.perf_counter()
    reached = nx.descendants(graph, "r00000")
    acyclic = nx.is_directed_acyclic_graph(graph)
    elapsed = time.perf_counter() - start
    check("networkx BFS", len(reached), size - 1)
    if not acyclic:
        raise BenchFailure("networkx: the plain chain has a cycle")
    return elapsed


def case_validate(opts: Options) -> list[Row]:
    flow = build_chain(VALIDATE_SIZE)
    graph = plain_graph(VALIDATE_SIZE)
    try:
        times, base = repeat_pair(
            lambda: routilux_validate(flow),
            lambda: plain_validate(graph, VALIDATE_SIZE),
            opts.repeats,
            opts.budget,
        )
    finally:
        flow.shutdown()
    ms, base_ms = median(times) * 1e3, median(base) * 1e3
    say(
        f"validate() on a {VALIDATE_SIZE:,}-routine chain: {ms:.1f} ms (networkx "
        f"BFS + cycle check {base_ms:.2f} ms; {len(times)}+{len(base)} runs)"
    )
    return [
        Row(
            f"validate() {VALIDATE_SIZE:,}-routine chain",
            f"{ms:.1f} ms",
            f"{base_ms:.2f} ms nx BFS+DAG",
            f"{ms / base_ms:.0f}x networkx",
            f"<= {TARGET_VALIDATE_MS:.0f} ms (#8)",
            at_most(ms, TARGET_VALIDATE_MS),
        )
    ]


# ---------------------------------------------------------------- connect


def routilux_connect(n: int) -> float:
    flow = Flow(flow_id="bench-connect")
    flow.add_routine(ChainSource(), "source")
    targets = [flow.add_routine(CountingSink(), f"sink{i:05d}") for i in range(n)]
    connect = flow.connect
    try:
        gc.collect()
        start = time.perf_counter()
        for target in targets:
            connect("source", "output", target, "input")
        elapsed = time.perf_counter() - start
        check(f"connect x{n:,}: connections", len(flow.connections), n)
    finally:
        flow.shutdown()
    return elapsed


def plain_connect(n: int) -> float:
    targets = [f"sink{i:05d}" for i in range(n)]
    connections: dict[tuple[str, str, str, str], dict[str, str] | None] = {}
    routes: dict[tuple[str, str], list[tuple[str, str]]] = {}
    gc.collect()
    start = time.perf_counter()
    for target in targets:
        key = ("source", "output", target, "input")
        if key in connections:
            raise BenchFailure(f"plain connect: duplicate {key}")
        connections[key] = None
        routes.setdefault(("source", "output"), []).append((target, "input"))
    elapsed = time.perf_counter() - start
    check(f"plain connect x{n:,}", len(routes["source", "output"]), n)
    return elapsed


def case_connect(opts: Options) -> list[Row]:
    rows: list[Row] = []
    seconds: dict[int, float] = {}
    base: dict[int, float] = {}
    for n in (CONNECT_SMALL, CONNECT_LARGE):
        times, plain = repeat_pair(
            lambda n=n: routilux_connect(n),
            lambda n=n: plain_connect(n),
            opts.repeats,
            opts.budget,
        )
        seconds[n], base[n] = median(times), median(plain)
        say(
            f"connect one event to {n:,} slots: {seconds[n] * 1e3:.1f} ms "
            f"({seconds[n] / n * 1e6:.1f} us/connect; dict inserts "
            f"{base[n] * 1e3:.2f} ms; {len(times)}+{len(plain)} runs)"
        )
        rows.append(
            Row(
                f"connect 1 event -> {n:,} slots",
                f"{seconds[n] * 1e3:.1f} ms",
                f"{base[n] * 1e3:.2f} ms dict inserts",
                f"{seconds[n] / base[n]:.0f}x dicts",
                "linear (#8)",
                "info",
            )
        )
    ratio = seconds[CONNECT_LARGE] / seconds[CONNECT_SMALL]
    base_ratio = base[CONNECT_LARGE] / base[CONNECT_SMALL]
    rows.append(
        Row(
            f"connect growth {CONNECT_LARGE // 1000}k/{CONNECT_SMALL // 1000}k",
            f"{ratio:.1f}x",
            f"{base_ratio:.1f}x dicts",
            f"linear {LINEAR:.0f}x, quadratic {LINEAR**2:.0f}x",
            f"~{LINEAR:.0f}x (<= {TARGET_CONNECT_RATIO:.0f}x) (#8)",
            at_most(ratio, TARGET_CONNECT_RATIO),
        )
    )
    return rows
