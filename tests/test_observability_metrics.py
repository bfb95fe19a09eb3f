"""Prometheus metrics scraped over real HTTP show exactly what happened; lag gauges match the runner."""

from __future__ import annotations

import contextlib
import sys
import threading
import urllib.request
from typing import Any

import pytest
from _ops_helpers import Interloper
from prometheus_client.parser import text_string_to_metric_families

from eventcore_lab.core.errors import InvalidArgument, ValidationFailed
from eventcore_lab.core.executor import Executor
from eventcore_lab.core.retry import RetryConfig
from eventcore_lab.examples.banking import Deposit, OpenAccount
from eventcore_lab.observability import CommandSucceeded, ObservedStore, Recorder, StoreOperation
from eventcore_lab.observability.metrics import MetricsObserver, pool_stats_of, serve_metrics
from eventcore_lab.projections import ProjectionRunner
from eventcore_lab.stores import MemoryStore


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def run_workload(store: Any, n_ok: int, k_conflicts: int, e_failures: int, observers: list[Any]) -> None:
    racing = Interloper(store)
    executor = Executor(
        ObservedStore(racing, observers),
        retry=RetryConfig(initial_delay=0, jitter=False),
        observers=observers,
        sleep=lambda _: None,
    )
    executor.execute(OpenAccount("account-m", owner="m", initial_balance=0))
    for i in range(n_ok - 1):
        if i < k_conflicts:
            racing.races = 1  # this command meets exactly one conflict, then succeeds on retry
        executor.execute(Deposit("account-m", amount=5))
    for _ in range(e_failures):
        with pytest.raises(ValidationFailed):
            executor.execute(Deposit("account-m", amount=-1))


@pytest.fixture(params=["memory", "postgres"])
def real_store(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        store = MemoryStore()
    else:
        from eventcore_lab.stores.postgres import PostgresStore

        store = PostgresStore(request.getfixturevalue("pg_url"), schema=request.getfixturevalue("pg_schema"))
    yield store
    store.close()


def test_scraped_counts_equal_commands_conflicts_and_failures(real_store: Any) -> None:
    metrics = MetricsObserver(pool_stats=pool_stats_of(real_store))
    server, port = serve_metrics(metrics)
    try:
        n_ok, k, e = 12, 4, 3
        run_workload(real_store, n_ok, k, e, [metrics])
        samples = scrape(port)
    finally:
        server.shutdown()
    assert total(samples, "eventcore_commands_total") == n_ok + e
    assert total(samples, "eventcore_commands_total", command_type="Deposit") == n_ok - 1 + e
    assert total(samples, "eventcore_command_conflicts_total") == k
    assert total(samples, "eventcore_command_errors_total") == e
    assert total(samples, "eventcore_command_errors_total", code="CE001") == e
    assert total(samples, "eventcore_command_duration_seconds_count") == n_ok + e
    assert total(samples, "eventcore_command_retries_sum") == k
    assert total(samples, "eventcore_events_written_total") == n_ok
    # every command read once per attempt and wrote once per attempt that got to the commit
    reads = total(samples, "eventcore_event_store_latency_seconds_count", operation="read")
    assert reads == n_ok + k + e
    assert total(samples, "eventcore_active_streams") == 1
    if isinstance(real_store, MemoryStore):
        assert total(samples, "eventcore_connection_pool_size") == 0
    else:
        assert total(samples, "eventcore_connection_pool_max_size") == 10


def test_metrics_use_the_manual_help_texts_and_buckets() -> None:
    metrics = MetricsObserver()
    run_workload(MemoryStore(), 2, 0, 0, [metrics])
    text = metrics.text()
    assert "# HELP eventcore_commands_total Total number of commands executed" in text
    assert "# HELP eventcore_command_duration_seconds Command execution duration in seconds" in text
    assert "# HELP eventcore_event_store_latency_seconds Event store operation latency in seconds" in text
    buckets = sorted(
        float(s.labels["le"])
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "eventcore_command_duration_seconds_bucket" and s.labels["command_type"] == "Deposit"
    )
    assert buckets[:-1] == [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
    assert "stream_id" not in text  # no unbounded labels


def test_concurrent_threads_observations_sum_exactly() -> None:
    """Counts are kept per thread without locks and summed when scraped: with eight threads racing on
    three accounts (conflicts, retries, refusals) and a scrape while they run, the final scrape equals
    what each command reported, one by one, to a recorder."""
    metrics, recorder = MetricsObserver(), Recorder()
    observers = [metrics, recorder]
    store = MemoryStore()
    executor = Executor(
        ObservedStore(store, observers),
        retry=RetryConfig(max_attempts=10_000, initial_delay=0, jitter=False),
        observers=observers,
        sleep=lambda _: None,
    )
    for a in range(3):
        executor.execute(OpenAccount(f"account-{a}", owner="t", initial_balance=0))
    threads, per_thread = 8, 150

    def client(seed: int) -> None:
        for n in range(per_thread):
            with contextlib.suppress(ValidationFailed):
                executor.execute(Deposit(f"account-{(seed + n) % 3}", amount=-1 if n % 10 == 0 else 1))

    server, port = serve_metrics(metrics)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so they race between read and append
    try:
        workers = [threading.Thread(target=client, args=(seed,)) for seed in range(threads)]
        for worker in workers:
            worker.start()
        during = scrape(port)  # scraping while the threads count must neither block nor break them
        for worker in workers:
            worker.join()
        samples = scrape(port)
    finally:
        sys.setswitchinterval(interval)
        server.shutdown()
    frame = recorder.frame()
    commands = frame[frame["kind"] == "command"]
    failed = int((~commands["ok"].astype(bool)).sum())
    conflicts = int(commands["conflicts"].sum())
    attempts = int(commands["attempts"].sum())
    assert len(commands) == 3 + threads * per_thread
    assert failed == threads * (per_thread // 10)
    assert total(during, "eventcore_commands_total") <= len(commands)
    assert total(samples, "eventcore_commands_total") == len(commands)
    assert total(samples, "eventcore_command_duration_seconds_count") == len(commands)
    assert total(samples, "eventcore_command_duration_seconds_bucket", le="+Inf") == len(commands)
    assert total(samples, "eventcore_command_errors_total", code="CE001") == failed
    assert total(samples, "eventcore_command_conflicts_total") == conflicts
    assert total(samples, "eventcore_command_retries_sum") == attempts - len(commands)
    assert total(samples, "eventcore_events_written_total") == store.head()
    assert total(samples, "eventcore_event_store_latency_seconds_count", operation="read") == attempts
    assert total(samples, "eventcore_active_streams") == 3
    assert conflicts > 0  # the threads did race (each conflict is one retry)


def test_histogram_buckets_and_sums_are_exact_across_threads() -> None:
    """Synthetic observations from threads that come and go (a later thread may reuse a finished one's
    id): every bucket, count and sum is exact, and a value on a bound falls in that bound's bucket."""
    metrics = MetricsObserver(buckets=(0.01, 0.1, 1.0))
    durations = (0.005, 0.01, 0.05, 0.1, 2.0)  # two on bounds, one above the last bound
    repeats = 2_000

    def observe() -> None:
        for i in range(repeats):
            for d in durations:
                metrics.observe(CommandSucceeded("Pay", "c", 1 + i % 2, d, 2, ("a",), 0))
                metrics.observe(StoreOperation("write", "append", d, 2, i % 100 != 0))

    for _wave in range(2):
        workers = [threading.Thread(target=observe) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    n = 2 * 4 * repeats  # observations per duration value
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.text())
        for s in family.samples
    }
    for name, label in (
        ("eventcore_command_duration_seconds", ("command_type", "Pay")),
        ("eventcore_event_store_latency_seconds", ("operation", "write")),
    ):
        buckets = {
            le: samples[(f"{name}_bucket", tuple(sorted([label, ("le", le)])))]
            for le in ("0.01", "0.1", "1.0", "+Inf")
        }
        assert buckets == {"0.01": 2 * n, "0.1": 4 * n, "1.0": 4 * n, "+Inf": 5 * n}
        assert samples[(f"{name}_count", (label,))] == 5 * n
        assert samples[(f"{name}_sum", (label,))] == pytest.approx(n * sum(durations))
    assert total(samples, "eventcore_commands_total") == 5 * n
    assert total(samples, "eventcore_events_written_total") == 10 * n
    assert total(samples, "eventcore_command_retries_sum") == 5 * n // 2
    assert total(samples, "eventcore_command_retries_bucket", le="0.0") == 5 * n // 2
    assert total(samples, "eventcore_event_store_errors_total") == 5 * n // 100


def test_buckets_must_increase() -> None:
    with pytest.raises(InvalidArgument, match="increasing"):
        MetricsObserver(buckets=(0.1, 0.01))
    with pytest.raises(InvalidArgument, match="at least one"):
        MetricsObserver(buckets=())


class Counting:
    name = "counting"

    def __init__(self) -> None:
        self.count = 0

    def apply(self, event: Any) -> None:
        self.count += 1


def test_lag_gauges_equal_the_runners_lag() -> None:
    store = MemoryStore()
    run_workload(store, 30, 0, 0, [])
    metrics = MetricsObserver()
    runner = ProjectionRunner(store, Counting(), batch_size=7, observers=[metrics])
    runner.run_until_caught_up(until=10)
    lag = runner.report_lag()
    server, port = serve_metrics(metrics)
    try:
        samples = scrape(port)
    finally:
        server.shutdown()
    assert lag.events == store.head() - 10 > 0
    assert total(samples, "eventcore_projection_lag_events", projection_name="counting") == lag.events
    assert total(samples, "eventcore_projection_lag_seconds", projection_name="counting") == lag.seconds
    assert lag.seconds > 0
    assert total(samples, "eventcore_projection_events_processed_total", projection_name="counting") == 10
    runner.run_until_caught_up()
    text = metrics.text()
    assert 'eventcore_projection_lag_events{projection_name="counting"} 0.0' in text


def test_recorder_summarises_rates_and_latency() -> None:
    recorder = Recorder()
    run_workload(MemoryStore(), 10, 2, 5, [recorder])
    summary = recorder.summary()
    assert summary["commands"] == 15
    assert summary["error_rate"] == pytest.approx(5 / 15)
    assert summary["retried_rate"] == pytest.approx(2 / 15)
    assert summary["conflict_rate"] == pytest.approx(2 / 15)
    assert summary["p99_ms"] >= summary["p50_ms"] > 0
    frame = recorder.frame()
    assert set(frame["kind"]) == {"command", "store"}
    per = recorder.per_second()
    assert per["commands"].sum() == 15
    assert per["errors"].sum() == 5
    assert per["conflicts"].sum() == 2


def test_a_failing_observer_does_not_break_commands(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def observe(self, observation: object) -> None:
            raise RuntimeError("observer bug")

    recorder = Recorder()
    executor = Executor(MemoryStore(), observers=[Broken(), recorder])
    result = executor.execute(OpenAccount("account-x", owner="x"))
    assert len(result.events_written) == 1
    assert recorder.summary()["commands"] == 1
    assert "observer bug" in caplog.text


def test_a_second_observer_on_the_same_registry_is_refused() -> None:
    """The sharded families are described to the registry, so a name clash is caught when it is made
    rather than producing a scrape with every series twice."""
    metrics = MetricsObserver()
    with pytest.raises(ValueError, match="eventcore_commands_total"):
        MetricsObserver(registry=metrics.registry)
