"""Constant-rate HTTP load, to show whether a deploy drops or fails requests while it runs.

The model is open: request i is sent at start + i/rate whether or not earlier ones have answered,
so a stalled server shows up as failures and latency instead of quietly slowing the client down.
When `max_in_flight` requests are already waiting, a new arrival is dropped and counted (as k6
does) rather than delayed, which would bend the schedule.

Requests run on worker threads with the stdlib http.client, so nothing beyond the standard library
is needed. Connections are kept alive and reused. A reused connection that the server closed while
idle (nginx does so on every reload) is retried once on a new connection, as browsers do, but only
for GET/HEAD/OPTIONS; other methods always start on a new connection, so they are never sent twice.
Those retries are counted in `LoadReport.stale_retries`.

Traffic may only go to loopback or to hosts the caller vouches for (the sandbox's own containers):
`check_target` runs before anything is sent.

The app sends no header naming the backend that answered, so backends and releases are counted
from the JSON of `/version` responses ({"release": ..., "host": ...}); keep `/version` in the mix.
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import json
import math
import queue
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

MAX_IN_FLIGHT = 256
# Methods that are safe to send a second time when a kept-alive connection turns out dead.
RETRYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
USER_AGENT = "flask-fleet-load/1"


class TargetRefused(ValueError):
    """The URL points somewhere load must never go."""


def check_target(url: str, allowed_hosts: Iterable[str] = ()) -> None:
    """Refuse any target but loopback or an explicitly allowed host, before a single request.

    A name is resolved and every address it resolves to must be allowed, because the connection
    may use any of them. `allowed_hosts` holds names or addresses of the sandbox's own hosts.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(f"load target {url!r}: only http and https URLs are supported")
    host = (parts.hostname or "").lower()
    if not host:
        raise TargetRefused(f"load target {url!r} names no host")
    allowed = {_normalize_host(name) for name in allowed_hosts}
    if host in allowed:
        return
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused(f"load target host {host!r} does not resolve: {exc}") from None
    addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    outside = sorted(
        str(address)
        for address in addresses
        if not address.is_loopback and str(address) not in allowed
    )
    if outside:
        raise TargetRefused(
            f"load target host {host!r} resolves to {', '.join(outside)}, which is neither "
            "loopback nor one of the allowed sandbox hosts; refusing to send load there"
        )


def _normalize_host(name: str) -> str:
    name = name.strip().lower().strip("[]")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


@dataclass
class Request:
    """One kind of request in a mix; `name` labels it in the report."""

    method: str
    path: str
    body: dict | None = None
    name: str = ""

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        if not self.name:
            self.name = f"{self.method} {self.path}"


def default_mix() -> list[tuple[Request, int]]:
    """What a visitor does to the reference app without logging in; all answer 200 when healthy.

    `/version` is in the mix because its answers are the only way to tell which backend served.
    """
    return [
        (Request("GET", "/api/papers"), 6),
        (Request("GET", "/version"), 2),
        (Request("POST", "/api/papers/query", {"page": 1, "per_page": 10}), 1),
        (Request("GET", "/healthz"), 1),
    ]


def _interleave(mix: Sequence[tuple[Request, int]]) -> list[Request]:
    """One cycle of the mix, spread out (smooth weighted round robin, as nginx balances).

    Deterministic rather than random, so short runs still carry the mix's proportions.
    """
    if not mix or any(not isinstance(w, int) or w < 1 for _, w in mix):
        raise ValueError("a mix is a non-empty list of (Request, positive integer weight)")
    total = sum(w for _, w in mix)
    current = [0] * len(mix)
    cycle = []
    for _ in range(total):
        for index, (_, weight) in enumerate(mix):
            current[index] += weight
        best = max(range(len(mix)), key=current.__getitem__)
        current[best] -= total
        cycle.append(mix[best][0])
    return cycle


@dataclass
class LoadReport:
    """What a load run saw. Failures are bucketed by the second they were sent (epoch seconds)."""

    base_url: str
    target_rate: float
    started_at: float
    elapsed: float = 0.0
    achieved_rate: float = 0.0
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    connection_errors: int = 0
    timeouts: int = 0
    failed: int = 0
    dropped: int = 0
    stale_retries: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    failures_by_request: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    backends: dict[str, int] = field(default_factory=dict)
    releases: dict[str, int] = field(default_factory=dict)
    timeline: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        # A run that sent nothing proves nothing, and dropped arrivals mean the server was so
        # slow that the client ran out of room; neither may pass as a clean run.
        return self.sent > 0 and self.failed == 0 and self.dropped == 0

    @property
    def failure_rate(self) -> float:
        return self.failed / self.sent if self.sent else 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["timeline"] = [
            {"second": second, "sent": sent, "failed": failed}
            for second, sent, failed in self.timeline
        ]
        data.update(ok=self.ok, failure_rate=self.failure_rate)
        return data

    def summary(self) -> str:
        def counts(mapping: dict) -> str:
            return " ".join(f"{key}={value}" for key, value in sorted(mapping.items())) or "-"

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}"

        lines = [
            f"load on {self.base_url}: {self.sent} sent in {self.elapsed:.1f} s "
            f"({self.achieved_rate:.1f}/s, target {self.target_rate:g}/s), "
            f"{self.failed} failed ({self.failure_rate:.2%}) -> {'OK' if self.ok else 'NOT OK'}",
            f"  status: {counts(self.statuses)}; connection errors {self.connection_errors}, "
            f"timeouts {self.timeouts}, dropped {self.dropped}, stale retries {self.stale_retries}",
            f"  latency ms: p50 {ms(self.p50_ms)}  p95 {ms(self.p95_ms)}  "
            f"p99 {ms(self.p99_ms)}  max {ms(self.max_ms)}",
            f"  backends: {counts(self.backends)}; releases: {counts(self.releases)}",
        ]
        if self.errors:
            lines.append(f"  errors: {counts(self.errors)}")
        if self.failures_by_request:
            lines.append(f"  failed requests: {counts(self.failures_by_request)}")
        bad = [(second, failed) for second, _, failed in self.timeline if failed]
        if bad:
            shown = ", ".join(
                f"{time.strftime('%H:%M:%S', time.localtime(second))}={failed}"
                for second, failed in bad[:10]
            )
            more = f" (+{len(bad) - 10} more)" if len(bad) > 10 else ""
            lines.append(f"  seconds with failures: {shown}{more}")
        return "\n".join(lines)


@dataclass
class _Outcome:
    status: int | None = None
    error: BaseException | None = None
    latency: float = 0.0
    version: dict | None = None
    stale_retry: bool = False


class _Client:
    """Blocking HTTP over a pool of kept-alive connections; each call runs on a worker thread."""

    def __init__(self, base_url: str, timeout: float, verify_tls: bool) -> None:
        parts = urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.tls = ssl.create_default_context()
        if not verify_tls:
            # The sandbox's certificate is self-signed; what is measured here is availability.
            self.tls.check_hostname = False
            self.tls.verify_mode = ssl.CERT_NONE
        self.idle: queue.SimpleQueue[http.client.HTTPConnection] = queue.SimpleQueue()

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.tls
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def fetch(self, request: Request) -> _Outcome:
        started = time.perf_counter()
        outcome = _Outcome()
        reusable = request.method in RETRYABLE_METHODS
        conn, reused = None, False
        if reusable:
            try:
                conn, reused = self.idle.get_nowait(), True
            except queue.Empty:
                pass
        try:
            try:
                self._exchange(conn or self._connect(), request, outcome)
            except ConnectionError:
                if not reused:
                    raise
                outcome.stale_retry = True
                self._exchange(self._connect(), request, outcome)
        except (OSError, http.client.HTTPException) as exc:
            # TimeoutError is an OSError too; the caller tells the two apart.
            outcome.error = exc
        outcome.latency = time.perf_counter() - started
        return outcome

    def _exchange(
        self, conn: http.client.HTTPConnection, request: Request, outcome: _Outcome
    ) -> None:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        payload = None
        if request.body is not None:
            payload = json.dumps(request.body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(request.method, self.prefix + request.path, payload, headers)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            conn.close()
            raise
        outcome.status = response.status
        if response.will_close:
            conn.close()
        else:
            self.idle.put(conn)
        if request.path == "/version" and 200 <= response.status < 300:
            try:
                outcome.version = json.loads(data)
            except ValueError:
                outcome.version = None

    def close(self) -> None:
        while True:
            try:
                self.idle.get_nowait().close()
            except queue.Empty:
                return


class _Tally:
    """Running counts; touched only from the event loop, so it needs no lock."""

    def __init__(self, base_url: str, rate: float) -> None:
        self.report = LoadReport(base_url=base_url, target_rate=rate, started_at=time.time())
        self.latencies: list[float] = []
        self.seconds: dict[int, list[int]] = {}
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.backends: Counter[str] = Counter()
        self.releases: Counter[str] = Counter()

    def sent(self) -> int:
        second = int(time.time())
        self.seconds.setdefault(second, [0, 0])[0] += 1
        self.report.sent += 1
        return second

    def record(self, second: int, request: Request, outcome: _Outcome) -> None:
        report = self.report
        report.stale_retries += outcome.stale_retry
        if outcome.error is not None:
            self.errors[type(outcome.error).__name__] += 1
            if isinstance(outcome.error, TimeoutError):
                report.timeouts += 1
            else:
                report.connection_errors += 1
            failed = True
        else:
            assert outcome.status is not None
            self.statuses[outcome.status] += 1
            self.latencies.append(outcome.latency * 1000)
            failed = not 200 <= outcome.status < 400
        if isinstance(outcome.version, dict):
            self.backends[str(outcome.version.get("host"))] += 1
            self.releases[str(outcome.version.get("release"))] += 1
        if failed:
            report.failed += 1
            self.failures[request.name] += 1
            self.seconds[second][1] += 1

    def snapshot(self, elapsed: float, send_window: float) -> LoadReport:
        report = replace(self.report)
        report.elapsed = elapsed
        report.achieved_rate = report.sent / send_window if send_window > 0 else 0.0
        report.statuses = dict(sorted(self.statuses.items()))
        report.errors = dict(self.errors)
        report.failures_by_request = dict(self.failures)
        report.backends = dict(self.backends)
        report.releases = dict(self.releases)
        ordered = sorted(self.latencies)
        if ordered:
            report.p50_ms, report.p95_ms, report.p99_ms = (
                round(_percentile(ordered, p), 2) for p in (50, 95, 99)
            )
            report.max_ms = round(ordered[-1], 2)
        if self.seconds:
            # Seconds in which nothing was sent are listed too: a gap is itself a finding.
            first, last = min(self.seconds), max(self.seconds)
            report.timeline = [
                (second, *self.seconds.get(second, (0, 0))) for second in range(first, last + 1)
            ]
        return report


def _percentile(ordered: list[float], percent: float) -> float:
    # Nearest rank: always a latency that was actually observed.
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


async def run_load(
    base_url: str,
    rate: float,
    seconds: float,
    max_requests: int | None = None,
    mix: Sequence[tuple[Request, int]] | None = None,
    timeout: float = 10.0,
    verify_tls: bool = False,
    allowed_hosts: Iterable[str] = (),
    on_progress: Callable[[LoadReport], None] | None = None,
    *,
    max_in_flight: int = MAX_IN_FLIGHT,
    stop: asyncio.Event | None = None,
) -> LoadReport:
    """Send `rate` requests a second for at most `seconds` and `max_requests`, then report.

    Ends by itself; setting `stop` ends it early. Requests still in flight are awaited (each is
    bounded by `timeout` per socket operation), so every request sent is accounted for.
    `on_progress` gets a snapshot about once a second, on this event loop's thread.
    """
    check_target(base_url, allowed_hosts)
    if rate <= 0 or seconds <= 0 or timeout <= 0 or max_in_flight < 1:
        raise ValueError("rate, seconds, timeout and max_in_flight must be positive")
    cycle = _interleave(default_mix() if mix is None else mix)
    limit = math.inf if max_requests is None else max_requests
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    client = _Client(base_url, timeout, verify_tls)
    tally = _Tally(base_url, rate)
    # One thread per possible in-flight request: the default executor's few threads would
    # queue requests behind each other and turn the open model into a closed one.
    executor = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="fleet-load")
    in_flight: set[asyncio.Task] = set()

    async def one(request: Request) -> None:
        second = tally.sent()
        outcome = await loop.run_in_executor(executor, client.fetch, request)
        tally.record(second, request, outcome)

    start = loop.time()
    deadline = start + seconds
    next_progress = start + 1
    index = 0
    try:
        while index < limit and not stop.is_set():
            due = start + index / rate
            if due >= deadline:
                break
            if due > loop.time():
                try:
                    async with asyncio.timeout_at(due):
                        await stop.wait()
                    break
                except TimeoutError:
                    pass
            if len(in_flight) >= max_in_flight:
                tally.report.dropped += 1
            else:
                task = asyncio.create_task(one(cycle[index % len(cycle)]))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            index += 1
            if on_progress is not None and loop.time() >= next_progress:
                now = loop.time()
                next_progress = now + 1
                on_progress(tally.snapshot(now - start, now - start))
        # Each arrival owns a 1/rate slot; a schedule that fell behind shows a lower rate.
        send_window = max(loop.time() - start, index / rate)
        await asyncio.gather(*in_flight)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        client.close()
    return tally.snapshot(loop.time() - start, send_window)


class BackgroundLoad:
    """Runs `run_load` on its own thread and event loop, for synchronous callers.

    Meant for a deploy rehearsal or an integration test: start the load, run the deploy in the
    foreground, then `stop()` and judge the report. Also a context manager.
    """

    def __init__(self, base_url: str, rate: float, seconds: float, **options: Any) -> None:
        self.base_url = base_url
        self.rate = rate
        self.seconds = seconds
        self.options = options
        self.report: LoadReport | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> BackgroundLoad:
        if self._thread is not None:
            raise RuntimeError("this load has already been started")
        # Checked here too so that a refused target fails in the caller's thread, at once.
        allowed = self.options.get("allowed_hosts", ())
        check_target(self.base_url, allowed)
        self._thread = threading.Thread(target=self._run, name="fleet-load-loop", daemon=True)
        self._thread.start()
        self._ready.wait()
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed over to the caller by stop()
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        self.report = await run_load(
            self.base_url, self.rate, self.seconds, stop=self._stop, **self.options
        )

    def stop(self) -> LoadReport:
        """End the run now (if it has not ended by itself) and return its report."""
        if self._thread is None:
            raise RuntimeError("this load was never started")
        if self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass  # the loop is already closed: the run ended by itself
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self.report is not None
        return self.report

    def __enter__(self) -> BackgroundLoad:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
