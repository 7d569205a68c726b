"""The sessions benchmark's report: a row for each number of sessions tried, then the largest
that kept its ack p99 under the bound with no error, beside the target."""

from __future__ import annotations

import argparse
import os
from collections import defaultdict

from bench.measure import percentile
from bench.report import print_machine, print_table, world_description
from bench.sessions.load import StepLoad

ACK_P99_BOUND_SECONDS = 0.250
TARGET_SESSIONS = 300


def passed(step: StepLoad) -> bool:
    """No error, and the ack p99 under the bound."""
    if step.errors or not step.acks:
        return False
    return percentile(step.acks, 0.99) < ACK_P99_BOUND_SECONDS


def appends(step: StepLoad) -> int:
    return len(step.acks) + step.errors.total()


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def percentile_ms(values: list[float], fraction: float) -> str:
    return milliseconds(percentile(values, fraction)) if values else "-"


def share_of_core(cpu_seconds: float, step: StepLoad) -> str:
    return f"{cpu_seconds / step.seconds * 100:.0f}%"


def machine_busy(step: StepLoad) -> str:
    return f"{step.machine_busy_seconds / step.machine_seconds * 100:.0f}%"


def machine_ms_per_append(step: StepLoad) -> float:
    """The whole machine's busy CPU time per append: service, client, database server, kernel."""
    return step.machine_busy_seconds * 1000 / appends(step)


def ceiling(step: StepLoad) -> int:
    """Sessions at one append a second that would keep every core busy at this step's machine
    CPU per append: no more can be served on this machine at that cost, whatever the latency."""
    return int(os.cpu_count() * 1000 / machine_ms_per_append(step))


COLUMNS = [
    ("appends", lambda step: str(appends(step))),
    ("errors", lambda step: str(step.errors.total())),
    ("ack p50 ms", lambda step: percentile_ms(step.acks, 0.50)),
    ("ack p99 ms", lambda step: percentile_ms(step.acks, 0.99)),
    ("late p99 ms", lambda step: percentile_ms(step.lateness, 0.99)),
    ("appends/s", lambda step: f"{appends(step) / step.seconds:.1f}"),
    ("CPU-ms/append", lambda step: milliseconds(step.service_cpu_seconds / appends(step))),
    ("service CPU", lambda step: share_of_core(step.service_cpu_seconds, step)),
    ("client CPU", lambda step: share_of_core(step.client_cpu_seconds, step)),
    ("machine busy", machine_busy),
    ("machine CPU-ms/append", lambda step: f"{machine_ms_per_append(step):.1f}"),
    ("ceiling", lambda step: str(ceiling(step))),
    ("load", lambda step: f"{step.load_average:.1f}"),
    ("passed", lambda step: "yes" if passed(step) else "no"),
]


SLOWEST_SECONDS_SHOWN = 3


def print_slowest_seconds(step: StepLoad) -> None:
    """The seconds of the step whose appends were acknowledged slowest: a tail spread over the
    whole step points at steady saturation, one gathered in a few seconds at bursts."""
    by_second: dict[int, list[float]] = defaultdict(list)
    for second, ack in zip(step.due_seconds, step.acks, strict=True):
        by_second[second].append(ack)
    if not by_second:
        return
    over = sum(percentile(acks, 0.99) >= ACK_P99_BOUND_SECONDS for acks in by_second.values())
    slowest = sorted(by_second, key=lambda second: percentile(by_second[second], 0.99))
    shown = ", ".join(
        f"{second} (p50 {percentile_ms(by_second[second], 0.50)},"
        f" p99 {percentile_ms(by_second[second], 0.99)})"
        for second in reversed(slowest[-SLOWEST_SECONDS_SHOWN:])
    )
    print(
        f"{step.sessions} sessions: {over} of {len(by_second)} seconds with ack p99 >="
        f" {ACK_P99_BOUND_SECONDS * 1000:.0f} ms; slowest seconds (ms): {shown}"
    )


def print_report(
    steps: list[StepLoad], *, options: argparse.Namespace, connections: str, broker: bool
) -> None:
    print_table("sessions", steps, lambda step: str(step.sessions), COLUMNS)
    for step in steps:
        print_slowest_seconds(step)
        for error, count in step.errors.most_common(3):
            print(f"{step.sessions} sessions: {count} x {error}")
    best = max((step.sessions for step in steps if passed(step)), default=0)
    if best >= TARGET_SESSIONS:
        verdict = "met"
    elif all(passed(step) for step in steps):
        verdict = "not reached: every step tried passed"
    else:
        verdict = "not met"
    print(
        f"largest number of sessions with ack p99 < {ACK_P99_BOUND_SECONDS * 1000:.0f} ms and no"
        f" error: {best or 'none of those tried'} (target >= {TARGET_SESSIONS}: {verdict})"
    )
    last = steps[-1]
    print(
        f"ceiling at the last step's cost: {ceiling(last)} sessions would keep all"
        f" {os.cpu_count()} cores busy at {machine_ms_per_append(last):.1f} CPU-ms of the whole"
        " machine an append (service, client, database server and kernel)"
    )
    print_machine(world_description(broker))
    print(
        f"run: {options.seconds} s a step, {options.append_kib} KiB an append, chunks of"
        f" {options.chunk_kib} KiB, {options.workers} gunicorn workers, {connections} client"
        " connections (one per session up to --connections); service CPU and client CPU are"
        " shares of one core over the step, machine busy a share of all cores (/proc/stat)"
    )
