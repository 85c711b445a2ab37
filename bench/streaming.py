"""Benchmark of the streaming job: N lab clickstream events through a real Kafka broker into the
rt_* Delta tables, in one bounded run (a benchmark, not a timed test; figures go to the README).

    .venv/bin/python bench/streaming.py [--events 100000] [--max-offsets 20000] [--bootstrap H:P]

Steps: start a local broker in a temporary folder on free ports (``lakehouse kafka start``;
``--bootstrap`` uses a running one instead); produce ``--events`` MSK Clickstream Lab records
into a fresh topic with ``--start-time`` (event times ``1 / --event-rate`` apart, sent as fast as
the broker takes them); run ``lakehouse stream --available-now`` on that topic (the lab's
session query, which writes the three lab tables, and the raw archive; ``--max-offsets``
records per micro-batch) as a user runs it, in a subprocess whose process tree (Python
driver + Spark JVM + Python workers) is sampled for memory (PSS) every 0.5 s; read the job's
per-batch progress lines; stop the broker.

With ``--live SECONDS`` it measures the job as it runs in production instead: ``lakehouse
stream`` runs continuously (its trigger, ``LAKEHOUSE_STREAM_TRIGGER_SEC``), and ``lakehouse
produce`` sends ``--rate`` events per second for ``SECONDS`` seconds in real time (event time =
the wall clock at send). Afterwards the 10 s windows' latency is read from the Delta logs of
``rt_clickevents_userid_agg`` and ``rt_departments_agg``: for every window, the timestamp of the
commit that added its row minus the window's end (``windowEndTime``), both epoch ms of this
machine's clock. That is the time from the window's last possible event to its row being
visible in Delta; it cannot be below watermark + session gap (the window closes only when the
watermark passes it), and an event at the window's start waited 10 s longer. Windows of the last
watermark + gap seconds never close (no later events push the watermark) and are not counted.
Printed: the offered rate (what the producer achieved), the rate the stream processed (input
rows of each query over the run), and latency p50 / p95 / max, against the target p95 <
2 x (window + watermark).

Printed (times are wall clock on this machine):

- produce: events, seconds, events/s into Kafka;
- end to end: events / (seconds from starting ``lakehouse stream`` to its exit), with and
  without the start-up (Spark session and query start, until the last query has started);
- per query: micro-batches, input rows per batch, batch duration (median, max, in seconds, what
  Spark reports as ``triggerExecution``), rows/s processed (input rows / sum of durations), and
  the same after the first batch ("warm": the first one also pays the JIT warm-up and the
  state's creation; with the topic filled before the stream starts, this is the rate the job
  sustains while records are waiting);
- peak memory: the largest sampled PSS sum of the stream's process tree, in MiB (driver heap
  ``LAKEHOUSE_DRIVER_MEMORY``, 2g unless set);
- the machine's load average before and after (other work on the machine slows every figure);
- the rows written to each rt table (read with the same Delta reader the tests use).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
#: the lab's session query and the tables it writes
QUERIES = ("clickstream_sessions",)
TABLES = {
    "clickstream_sessions": (
        "rt_user_sessions_checkout", "rt_clickevents_userid_agg", "rt_departments_agg"
    ),
}  # fmt: skip
START = "2024-03-01T00:00:00"
_PROGRESS = re.compile(
    r"STREAM (?P<query>\S+) batch (?P<batch>\d+): (?P<rows>\d+) input rows .*?"
    r"batch (?P<ms>\d+) ms"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    """``lakehouse <args>`` as a user runs it, in its own process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "spark_jobs.cli", *args],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def run_cli(args: list[str], env: dict[str, str], timeout: float = 600) -> str:
    """Run ``lakehouse <args>`` to completion; its stderr (log lines). Raises on failure."""
    process = cli(args, env)
    out, err = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"lakehouse {' '.join(args)} failed:\n{out}\n{err[-4000:]}")
    return err


def tree_memory_mib(pid: int) -> float:
    """Memory of a process and all its descendants, MiB (0 when it is gone): the sum of their
    proportional set sizes (PSS: a page shared by n processes counts 1/n, so forked Python
    workers are not counted twice), or of their RSS where PSS is not available."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        try:
            info = process.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total / 2**20


def timed_stream(env: dict[str, str], log_file: Path) -> tuple[float, float, str]:
    """``lakehouse stream --available-now``: ``(seconds, peak MiB of its process tree, stderr)``;
    its whole stderr is also written to ``log_file``.

    Raises:
        RuntimeError: the job failed (the first error lines of its log are in the message).
    """
    began = time.monotonic()
    process = cli(["stream", "--available-now"], env)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_memory_mib(process.pid))
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate(timeout=3600)
    seconds = time.monotonic() - began
    done.set()
    sampler.join()
    log_file.write_text(err)
    if process.returncode != 0:
        errors = [line for line in err.splitlines() if re.search(r"Error|Exception|failed", line)]
        raise RuntimeError(
            f"lakehouse stream failed (log: {log_file}):\n" + "\n".join(errors[:20])[:4000]
        )
    return seconds, peak[0], err


def batch_figures(log: str) -> dict[str, list[tuple[int, int]]]:
    """Per query, ``(input rows, batch ms)`` of every micro-batch, from the progress lines."""
    batches: dict[str, list[tuple[int, int]]] = {}
    for match in _PROGRESS.finditer(log):
        batches.setdefault(match["query"], []).append((int(match["rows"]), int(match["ms"])))
    return batches


def startup_seconds(log: str, began_clock: str) -> float | None:
    """Seconds from starting ``lakehouse stream`` to its last query's start (the Spark session
    and the queries are up; no batch has run yet), from the log's ``HH:MM:SS`` prefixes (1 s
    resolution)."""
    stamps = re.findall(r"^(\d\d:\d\d:\d\d) lakehouse STREAM \S+: started on", log, re.M)
    if not stamps:
        return None

    def sec(text: str) -> int:
        h, m, s = (int(x) for x in text.split(":"))
        return h * 3600 + m * 60 + s

    return (sec(stamps[-1]) - sec(began_clock)) % 86400


def window_latencies(table: Path) -> list[tuple[int, int]]:
    """``(windowEndTime, commit timestamp - windowEndTime)`` in ms for every window row of the
    Delta table at ``table``, from its log: a row's commit is the one that added its file (the
    streaming job only appends, so every file is added once)."""
    import json

    import pyarrow.parquet as pq

    out: list[tuple[int, int]] = []
    for commit in sorted((table / "_delta_log").glob("*.json")):
        actions = [json.loads(line) for line in commit.read_text().splitlines()]
        stamp = next(a["commitInfo"]["timestamp"] for a in actions if "commitInfo" in a)
        for action in actions:
            if "add" in action:
                ends = pq.read_table(table / action["add"]["path"], columns=["windowEndTime"])
                out += [(end, stamp - end) for end in ends.column(0).to_pylist()]
    return out


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` by nearest rank: the ``ceil(q * n)``-th smallest
    (the smallest for ``q = 0``)."""
    import math

    ranked = sorted(values)
    return ranked[min(len(ranked), max(1, math.ceil(q * len(ranked)))) - 1]


@dataclass
class LiveRun:
    """What a ``--live`` run measured: the stream's log, the production's span (epoch ms of the
    first and last send), its seconds, and the 1-min load average at its start and end."""

    events: int
    log: str = ""
    produce_seconds: float = 0.0
    first_ms: int = 0
    last_ms: int = 0
    load_before: float = 0.0
    load_after: float = 0.0


def live_run(args, env: dict[str, str], work: Path, topic: str) -> None:
    """``--live``: the stream running continuously while events are produced in real time;
    prints rates and window latencies (see the module docstring)."""
    run = LiveRun(events=int(args.rate * args.live))
    stream = cli(["stream"], env)
    log_lines: list[str] = []
    reader = threading.Thread(target=lambda: log_lines.extend(stream.stderr), daemon=True)
    reader.start()
    threading.Thread(target=lambda: stream.stdout.read(), daemon=True).start()  # never blocks
    try:
        _live_measure(args, env, topic, stream, log_lines, run)
    finally:
        if stream.poll() is None:  # SIGTERM: the queries stop cleanly
            stream.send_signal(15)
            stream.wait(timeout=300)
        reader.join(timeout=10)
    run.log = "".join(log_lines)
    (work / "stream.log").write_text(run.log)
    _live_report(args, env, work, run)


def _live_measure(args, env, topic, stream, log_lines: list[str], run: LiveRun) -> None:
    """Wait for the queries to start, produce in real time, let the stream run ``--grace`` s
    longer; fills ``run``'s times and load averages."""
    deadline = time.monotonic() + 300
    expected_starts = len(QUERIES) + (0 if args.no_archive else 1)
    while sum("started on" in line for line in list(log_lines)) < expected_starts:
        if stream.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("lakehouse stream did not start:\n" + "".join(log_lines)[-4000:])
        time.sleep(0.5)
    run.load_before = os.getloadavg()[0]
    began = time.monotonic()
    run.first_ms = int(time.time() * 1000)
    run_cli(
        ["produce", "--topic", topic, "--schema", "msk_clickstream_lab", "--events",
         str(run.events), "--rate", str(args.rate), "--users", str(args.users), "--seed", "1"],
        env, timeout=args.live * 4 + 600,
    )  # fmt: skip
    run.produce_seconds = time.monotonic() - began
    run.last_ms = int(time.time() * 1000)
    time.sleep(args.grace)  # batches in flight finish; the watermark stops with the events
    run.load_after = os.getloadavg()[0]


def _live_report(args, env: dict[str, str], work: Path, run: LiveRun) -> None:
    """Print the figures of a ``--live`` run."""
    events = run.events
    watermark_ms = float(env.get("LAKEHOUSE_STREAM_WATERMARK_SEC", "20")) * 1000
    gap_ms = float(env.get("LAKEHOUSE_STREAM_SESSION_GAP_SEC", "1")) * 1000
    closable = run.last_ms - watermark_ms - gap_ms  # later windows cannot close in this run
    print(f"\nstreaming benchmark, live: msk_clickstream_lab at {args.rate:.0f} ev/s offered "
          f"for {args.live:.0f} s ({events} events, {args.users} users)")  # fmt: skip
    print(
        f"  machine: {os.cpu_count()} cores, Spark {env['LAKEHOUSE_SPARK_MASTER']}, trigger "
        f"{env.get('LAKEHOUSE_STREAM_TRIGGER_SEC', '5')} s, load average {run.load_before:.1f} at "
        f"the start, {run.load_after:.1f} at the end"
    )
    print(f"produced {events} events in {run.produce_seconds:.1f} s: "
          f"{events / run.produce_seconds:.0f} ev/s achieved")  # fmt: skip
    batches = batch_figures(run.log)
    start_of_day = (run.first_ms // 1000) % 86400
    for query in (*QUERIES, "raw_archive"):
        figures = batches.get(query, [])
        if not figures:
            continue
        rows = sum(r for r, _ in figures)
        durations = [ms / 1000 for _, ms in figures]
        # the last batch with input ended when its progress line was logged (HH:MM:SS)
        ends = re.findall(
            rf"^(\d\d):(\d\d):(\d\d) lakehouse STREAM {query} batch \d+: [1-9]\d* input rows",
            run.log,
            re.M,
        )
        h, m, sec = (int(x) for x in ends[-1])
        done = (h * 3600 + m * 60 + sec - start_of_day) % 86400  # s after the first send
        print(
            f"  {query:28} {len(figures):4d} batches, {rows:9d} input rows "
            f"({rows / events:.0%} of the events), the last processed {done} s after the first "
            f"send ({done - run.produce_seconds:+.0f} s after the last): {rows / done:7.0f} ev/s "
            f"sustained; batch median {statistics.median(durations):.1f} s, "
            f"max {max(durations):.1f} s"
        )
    target = 2 * (10_000 + watermark_ms) / 1000
    for query in ("rt_clickevents_userid_agg", "rt_departments_agg"):
        table = work / "lake" / "rt" / query
        if not (table / "_delta_log").exists():
            print(f"  {query}: no rows written")
            continue
        latencies = [lat / 1000 for end, lat in window_latencies(table) if end <= closable]
        if not latencies:
            print(f"  {query}: no closed window")
            continue
        print(
            f"  {query:28} latency window end -> row visible in Delta over {len(latencies)} "
            f"window rows: p50 {percentile(latencies, 0.5):.1f} s, p95 "
            f"{percentile(latencies, 0.95):.1f} s, max {max(latencies):.1f} s "
            f"(target p95 < {target:.0f} s; + 10 s for the window's first event)"
        )


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--event-rate", type=float, default=1000.0, help="event-time events/s")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument(
        "--max-offsets", type=int, help="records per batch (default 20000; --live: no limit)"
    )
    parser.add_argument("--bootstrap", help="use this running broker instead of starting one")
    parser.add_argument("--workdir", help="lake, archive and broker state (default: a temp dir)")
    parser.add_argument("--no-archive", action="store_true", help="skip the raw archive query")
    parser.add_argument(
        "--live", type=float, help="seconds of real-time production into the running stream"
    )
    parser.add_argument("--rate", type=float, default=20_000.0, help="--live: events/s offered")
    parser.add_argument(
        "--grace", type=float, default=60.0, help="--live: seconds the stream runs on after"
    )
    args = parser.parse_args()
    if args.max_offsets is None:
        args.max_offsets = 0 if args.live else 20_000

    work = Path(args.workdir or tempfile.mkdtemp(prefix="lakehouse-bench-stream-"))
    for sub in ("lake", "archive"):
        shutil.rmtree(work / sub, ignore_errors=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])
        ),
        "LAKEHOUSE_ROOT": str(work / "lake"),
        "LAKEHOUSE_STREAM_ARCHIVE": "none" if args.no_archive else str(work / "archive"),
        "LAKEHOUSE_STREAM_MAX_OFFSETS_PER_TRIGGER": str(args.max_offsets),  # 0: no limit
    }
    env.setdefault("LAKEHOUSE_SPARK_MASTER", "local[2]")
    env.setdefault("LAKEHOUSE_SHUFFLE_PARTITIONS", "2")
    env.setdefault("LAKEHOUSE_DRIVER_MEMORY", "2g")
    own_broker = args.bootstrap is None
    if own_broker:
        port, controller = free_port(), free_port()
        env.update(
            LAKEHOUSE_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}",
            LAKEHOUSE_KAFKA_CONTROLLER_PORT=str(controller),
            LAKEHOUSE_KAFKA_DIR=str(work / "kafka"),
        )
        run_cli(["kafka", "start"], env)
    else:
        env["LAKEHOUSE_KAFKA_BOOTSTRAP"] = args.bootstrap
    topic = f"bench_clicks_{int(time.time())}"
    env["LAKEHOUSE_STREAM_TOPICS"] = f"{topic}=msk_clickstream_lab"
    env["LAKEHOUSE_STREAM_RESULT_TOPIC_PREFIX"] = f"{topic}_"
    try:
        if args.live:
            live_run(args, env, work, topic)
            return
        began = time.monotonic()
        run_cli(
            ["produce", "--topic", topic, "--schema", "msk_clickstream_lab",
             "--events", str(args.events), "--rate", str(args.event_rate),
             "--users", str(args.users), "--seed", "1", "--start-time", START],
            env,
        )  # fmt: skip
        produce_seconds = time.monotonic() - began
        clock = time.strftime("%H:%M:%S")
        load_before = os.getloadavg()[0]
        seconds, peak_mib, log = timed_stream(env, work / "stream.log")
        load_after = os.getloadavg()[0]
    finally:
        if own_broker:
            run_cli(["kafka", "stop"], env)

    sys.path.insert(0, str(PROJECT_DIR))
    from tests.streaming.reference import read_delta

    startup = startup_seconds(log, clock)
    batches = batch_figures(log)
    print(f"\nstreaming benchmark: {args.events} msk_clickstream_lab events, {args.users} users,")
    print(f"  {args.events / args.event_rate:.0f} s of event time, <= {args.max_offsets} per batch")
    print(
        f"  machine: {os.cpu_count()} cores, Spark {env['LAKEHOUSE_SPARK_MASTER']}, "
        f"1-min load average {load_before:.1f} before the stream, {load_after:.1f} after"
    )
    print(
        f"produce into Kafka      {produce_seconds:8.1f} s "
        f"{args.events / produce_seconds:10.0f} ev/s"
    )
    print(f"stream --available-now  {seconds:8.1f} s {args.events / seconds:10.0f} ev/s end to end")
    if startup is not None:
        busy = seconds - startup
        print(f"  without start-up      {busy:8.1f} s {args.events / busy:10.0f} ev/s "
              f"(Spark session and query start: {startup:.0f} s)")  # fmt: skip
    print(
        f"peak memory (PSS) of the stream's process tree (Python driver, Spark JVM with "
        f"{env['LAKEHOUSE_DRIVER_MEMORY']} heap, Python workers): {peak_mib:.0f} MiB"
    )
    print(f"\n{'query':28} {'batches':>7} {'rows/batch':>10} {'median s':>9} {'max s':>7} "
          f"{'rows/s':>8} {'warm rows/s':>11} {'table rows':>10}")  # fmt: skip
    for query in (*QUERIES, "raw_archive"):
        figures = batches.get(query, [])
        if not figures:
            continue
        rows = [r for r, _ in figures if r]
        durations = [ms / 1000 for r, ms in figures]
        tables = [work / "lake" / "rt" / t for t in TABLES.get(query, (query,))]
        written = "/".join(
            str(len(read_delta(t))) if (t / "_delta_log").exists() else "-" for t in tables
        )
        warm_rows, warm_ms = sum(r for r, _ in figures[1:]), sum(ms for _, ms in figures[1:])
        warm_rate = f"{warm_rows * 1000 / warm_ms:11.0f}" if warm_ms else f"{'-':>11}"
        print(
            f"{query:28} {len(figures):7d} {statistics.median(rows or [0]):10.0f} "
            f"{statistics.median(durations):9.1f} {max(durations):7.1f} "
            f"{sum(rows) / sum(durations):8.0f} {warm_rate} {written:>10}"
        )


if __name__ == "__main__":
    main()
