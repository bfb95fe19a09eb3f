"""Every documented EVENTCORE_* variable is read and takes effect; bad values name the variable."""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eventcore_lab.config import (
    OPTIONS,
    EventCoreConfig,
    InvalidConfigValue,
    MissingConfig,
    load_config,
    reference_markdown,
)
from eventcore_lab.core.executor import Executor
from eventcore_lab.observability.logs import JsonFormatter
from eventcore_lab.projections import ErrorPolicy, ProjectionRunner
from eventcore_lab.stores import MemoryStore

ROOT = Path(__file__).resolve().parents[1]


class Nothing:
    def apply(self, event: Any) -> None:
        pass


def executor(cfg: Any) -> Executor:
    return Executor(MemoryStore(), **cfg.executor_options())


def runner(cfg: Any) -> ProjectionRunner:
    return ProjectionRunner(MemoryStore(), Nothing(), **cfg.runner_options())


def logger_after(cfg: Any) -> tuple[logging.Logger, logging.Handler]:
    handler = cfg.configure_logging(stream=io.StringIO())
    return logging.getLogger("eventcore_lab"), handler


def log_level(cfg: Any) -> int:
    before = logging.getLogger("eventcore_lab").level
    log, handler = logger_after(cfg)
    log.removeHandler(handler)
    level = log.level
    log.setLevel(before)
    return level


def log_formatter(cfg: Any) -> Any:
    before = logging.getLogger("eventcore_lab").level
    log, handler = logger_after(cfg)
    log.removeHandler(handler)
    log.setLevel(before)
    return handler.formatter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served(cfg: Any) -> tuple[str, int]:
    from eventcore_lab.observability.metrics import MetricsObserver

    server, port = cfg.serve_metrics(MetricsObserver())
    server.shutdown()
    server.server_close()
    return server.server_address[0], port


def served_port(cfg: Any) -> int:
    if cfg["metrics.port"] == 9090:  # the default: not bound here, another program may hold it
        return 9090
    return served(cfg)[1]


def served_address(cfg: Any) -> str:
    return served(EventCoreConfig({**cfg.values, "metrics.port": 0}, cfg.sources))[0]


def metric_buckets(cfg: Any) -> list[str]:
    (metrics,) = cfg.observers()
    Executor(MemoryStore(), observers=[metrics]).execute(_open())
    return [
        line.split('le="')[1].split('"')[0]
        for line in metrics.text().splitlines()
        if "duration_seconds_bucket" in line
    ]


def _open() -> Any:
    from eventcore_lab.examples.banking import OpenAccount

    return OpenAccount("account-1", owner="a")


def observer_types(cfg: Any) -> list[str]:
    return [type(o).__name__ for o in cfg.observers()]


def sampler_text(cfg: Any) -> str:
    return cfg.tracing_observer().tracer.sampler.get_description().split(",")[0]


def service_name(cfg: Any) -> str:
    return cfg.tracing_observer().tracer.resource.attributes["service.name"]


PORT = free_port()

#: variable -> (value to set, what to measure on the built objects, expected measurement)
CASES: dict[str, tuple[str, Callable[[Any], Any], Any]] = {
    "EVENTCORE_STORE": ("memory", lambda c: type(c.open_store()).__name__, "MemoryStore"),
    "EVENTCORE_COMMAND_DEFAULT_TIMEOUT": ("2m", lambda c: executor(c).timeout, 120.0),
    "EVENTCORE_COMMAND_MAX_RETRIES": ("7", lambda c: executor(c).retry.max_attempts, 7),
    "EVENTCORE_COMMAND_RETRY_DELAY_MS": ("125", lambda c: executor(c).retry.initial_delay, 0.125),
    "EVENTCORE_COMMAND_MAX_RETRY_DELAY_MS": ("3s", lambda c: executor(c).retry.max_delay, 3.0),
    "EVENTCORE_COMMAND_BACKOFF_MULTIPLIER": ("1.5", lambda c: executor(c).retry.multiplier, 1.5),
    "EVENTCORE_COMMAND_RETRY_JITTER": ("false", lambda c: executor(c).retry.jitter, False),
    "EVENTCORE_COMMAND_RETRY_POLICY": (
        "concurrency_conflicts_only",
        lambda c: (executor(c).retry.retry_transient, executor(c).retry.max_attempts),
        (False, 5),
    ),
    "EVENTCORE_COMMAND_MAX_DISCOVERY_ITERATIONS": ("3", lambda c: executor(c).max_discovery_iterations, 3),
    "EVENTCORE_PROJECTION_BATCH_SIZE": ("17", lambda c: runner(c).batch_size, 17),
    "EVENTCORE_PROJECTION_ERROR_HANDLING": ("fail_fast", lambda c: runner(c).error_policy, ErrorPolicy.STOP),
    "EVENTCORE_PROJECTION_RETRIES": ("9", lambda c: runner(c).retries, 9),
    "EVENTCORE_PROJECTION_POLL_INTERVAL": ("40ms", lambda c: runner(c).poll_interval, 0.04),
    "EVENTCORE_METRICS_ENABLED": ("false", observer_types, []),
    "EVENTCORE_METRICS_ADDRESS": ("127.0.0.2", served_address, "127.0.0.2"),
    "EVENTCORE_METRICS_PORT": (str(PORT), served_port, PORT),
    "EVENTCORE_METRICS_LATENCY_BUCKETS": ("0.5,2", metric_buckets, ["0.5", "2.0", "+Inf"]),
    "EVENTCORE_TRACING_ENABLED": ("true", observer_types, ["MetricsObserver", "TracingObserver"]),
    "EVENTCORE_TRACING_SAMPLE_RATE": ("0.25", sampler_text, "ParentBased{root:TraceIdRatioBased{0.25}"),
    "EVENTCORE_TRACING_SERVICE_NAME": ("billing", service_name, "billing"),
    "EVENTCORE_LOG_LEVEL": ("error", log_level, logging.ERROR),
    "EVENTCORE_LOG_FORMAT": ("text", lambda c: type(log_formatter(c)).__name__, "Formatter"),
    "EVENTCORE_LOG_INCLUDE_LOCATIONS": (
        "true",
        lambda c: isinstance(log_formatter(c), JsonFormatter) and log_formatter(c).include_location,
        True,
    ),
    "EVENTCORE_HEALTH_LAG_WARNING": ("1m", lambda c: c.health_options()["lag_warning"], 60.0),
    "EVENTCORE_HEALTH_LAG_CRITICAL": ("1h", lambda c: c.health_options()["lag_critical"], 3600.0),
}

#: The PostgreSQL pool options, measured on a real store.
PG_CASES: dict[str, tuple[str, Callable[[Any], Any], Any]] = {
    "EVENTCORE_DATABASE_SCHEMA": ("", lambda s: s.schema, None),  # value filled with the test schema
    "EVENTCORE_DATABASE_MAX_CONNECTIONS": ("4", lambda s: s.pool_stats().max_size, 4),
    "EVENTCORE_DATABASE_MIN_CONNECTIONS": ("3", lambda s: s.pool_stats().size, 3),
    "EVENTCORE_DATABASE_CONNECT_TIMEOUT": ("7", lambda s: s._pool.kwargs["connect_timeout"], 7),
    "EVENTCORE_DATABASE_ACQUIRE_TIMEOUT": ("2.5", lambda s: s._pool.timeout, 2.5),
    "EVENTCORE_DATABASE_CACHE_EVENTS": ("1000", lambda s: s._cache is not None, True),
}


def test_every_documented_variable_has_a_case() -> None:
    documented = {o.env for o in OPTIONS}
    assert documented == set(CASES) | set(PG_CASES) | {"EVENTCORE_DATABASE_URL"}


@pytest.mark.parametrize("variable", sorted(CASES))
def test_each_variable_is_read_and_takes_effect(variable: str) -> None:
    value, measure, expected = CASES[variable]
    default = measure(load_config(env={}))
    assert default != expected, f"the test value of {variable} must differ from the default"
    cfg = load_config(env={variable: value})
    assert measure(cfg) == expected
    (option,) = [o for o in OPTIONS if o.env == variable]
    assert cfg.sources[option.path] == f"env {variable}"


@pytest.mark.parametrize("variable", sorted(PG_CASES))
def test_each_database_variable_takes_effect_on_a_real_pool(
    variable: str, pg_url: str, pg_schema: str
) -> None:
    value, measure, expected = PG_CASES[variable]
    if variable == "EVENTCORE_DATABASE_SCHEMA":
        value, expected = pg_schema, pg_schema
    env = {"EVENTCORE_DATABASE_URL": pg_url, "EVENTCORE_DATABASE_SCHEMA": pg_schema, variable: value}
    store = load_config(env=env).open_store()
    try:
        assert type(store).__name__ == "PostgresStore"  # EVENTCORE_DATABASE_URL chose the store
        assert measure(store) == expected
    finally:
        store.close()


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("EVENTCORE_COMMAND_MAX_RETRIES", "-5", "an integer >= 0"),
        ("EVENTCORE_COMMAND_MAX_RETRIES", "many", "an integer >= 0"),
        ("EVENTCORE_COMMAND_RETRY_DELAY_MS", "soon", "a duration"),
        ("EVENTCORE_TRACING_SAMPLE_RATE", "1.5", "between 0.0 and 1.0"),
        ("EVENTCORE_METRICS_ENABLED", "perhaps", "true or false"),
        ("EVENTCORE_PROJECTION_ERROR_HANDLING", "ignore", "one of skip_and_log, fail_fast, retry"),
        ("EVENTCORE_METRICS_LATENCY_BUCKETS", "1,0.5", "increasing positive numbers"),
    ],
)
def test_bad_values_name_the_variable_the_value_and_what_is_allowed(
    variable: str, value: str, allowed: str
) -> None:
    with pytest.raises(InvalidConfigValue) as caught:
        load_config(env={variable: value})
    assert caught.value.code == "CF002"
    assert variable in str(caught.value) and repr(value) in str(caught.value) and allowed in str(caught.value)


def test_precedence_defaults_file_environment_overrides(tmp_path: Path) -> None:
    file = tmp_path / "eventcore.toml"
    file.write_text('[commands]\nmax_retries = 2\nretry_delay = "10ms"\n[projections]\nbatch_size = 50\n')
    cfg = load_config(
        env={"EVENTCORE_CONFIG": str(file), "EVENTCORE_COMMAND_MAX_RETRIES": "4"},
        overrides={"projections.batch_size": 60},
    )
    assert (
        cfg["commands.max_retries"] == 4
        and cfg.sources["commands.max_retries"] == "env EVENTCORE_COMMAND_MAX_RETRIES"
    )
    assert cfg["commands.retry_delay"] == 0.01 and cfg.sources["commands.retry_delay"] == f"file {file}"
    assert cfg["projections.batch_size"] == 60 and cfg.sources["projections.batch_size"] == "override"
    assert cfg["commands.default_timeout"] == 30.0 and cfg.sources["commands.default_timeout"] == "default"


def test_bad_files_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(MissingConfig, match="not found"):
        load_config(tmp_path / "none.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[commands]\nmax_retries = 'x'\n")
    with pytest.raises(InvalidConfigValue, match=r"commands\.max_retries"):
        load_config(bad, env={})
    bad.write_text("[commands]\nmax_retrys = 3\n")
    with pytest.raises(InvalidConfigValue, match=r"unknown option 'commands\.max_retrys'"):
        load_config(bad, env={})
    bad.write_text("[commands\n")
    with pytest.raises(InvalidConfigValue, match="not valid TOML"):
        load_config(bad, env={})


def test_describe_redacts_secrets_and_lists_unread_variables() -> None:
    cfg = load_config(
        env={"EVENTCORE_DATABASE_URL": "postgresql://me:hunter2@db/x", "EVENTCORE_COMAND_TIMEOUT": "1"}
    )
    rows = {r["key"]: r for r in cfg.describe()}
    assert rows["database.url"]["value"] == "postgresql://me:***@db/x"
    assert "hunter2" not in str(cfg.describe())
    assert cfg.unread == ("EVENTCORE_COMAND_TIMEOUT",)
    keyword = load_config(env={"EVENTCORE_STORE": "host=db user=me password=hunter2 dbname=x"})
    assert {r["key"]: r["value"] for r in keyword.describe()}[
        "store.url"
    ] == "host=db user=me password=*** dbname=x"
    path = load_config(env={"EVENTCORE_STORE": "data/events.duckdb"})
    assert {r["key"]: r["value"] for r in path.describe()}["store.url"] == "data/events.duckdb"


def test_the_reference_page_is_generated_from_the_options() -> None:
    page = (ROOT / "book" / "reference" / "configuration.md").read_text(encoding="utf-8")
    assert page == reference_markdown(), (
        "regenerate: python -m eventcore_lab.config > book/reference/configuration.md"
    )
    for option in OPTIONS:
        assert f"`{option.env}`" in page
