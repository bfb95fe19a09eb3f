"""One typed configuration for stores, pools, executor, retries, projections, monitoring and health.

Values come from, lowest to highest precedence:

1. the defaults below (the manual's option names and defaults, where the library has the option);
2. a TOML file: ``path=`` or ``$EVENTCORE_CONFIG`` (sections as in :data:`OPTIONS`, e.g.
   ``[commands] max_retries = 3``);
3. ``EVENTCORE_*`` environment variables;
4. explicit overrides (``overrides={"commands.max_retries": 3}``, what command-line flags pass).

A bad value is refused with :class:`InvalidConfigValue` (CF002) naming the variable or key, the value
and what is allowed. :meth:`EventCoreConfig.describe` lists each effective value and where it came from,
with secrets redacted. The reference page of the manual (7.2) is generated from :data:`OPTIONS`.
"""

from __future__ import annotations

import itertools
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.errors import EventCoreError
from .core.retry import RetryConfig

# -- errors ------------------------------------------------------------------------------------------


class ConfigError(EventCoreError):
    """The configuration cannot be used."""

    code = "CF000"


class MissingConfig(ConfigError):
    code = "CF001"


class InvalidConfigValue(ConfigError):
    code = "CF002"


# -- value parsers -----------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@dataclass(frozen=True)
class Kind:
    """How to read one option from text or TOML, and how to describe what is allowed."""

    name: str
    allowed: str
    parse: Callable[[Any], Any]


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError


def _int(minimum: int) -> Kind:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError
        number = int(str(value).strip()) if not isinstance(value, int) else value
        if number < minimum:
            raise ValueError
        return number

    return Kind("integer", f"an integer >= {minimum}", parse)


def _float(low: float, high: float | None = None) -> Kind:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if number != number or number < low or (high is not None and number > high):
            raise ValueError
        return number

    where = f"between {low} and {high}" if high is not None else f">= {low}"
    return Kind("number", f"a number {where}", parse)


def _duration(default_unit: str = "s") -> Kind:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int | float):
            seconds = float(value) * _UNITS[default_unit]
        else:
            match = _DURATION.match(str(value))
            if not match:
                raise ValueError
            seconds = float(match.group(1)) * _UNITS[match.group(2) or default_unit]
        if seconds < 0:
            raise ValueError
        return seconds

    unit = "milliseconds" if default_unit == "ms" else "seconds"
    return Kind("duration", f"a duration: a number of {unit}, or e.g. '50ms', '30s', '5m'", parse)


def _choice(*choices: str) -> Kind:
    def parse(value: Any) -> str:
        text = str(value).strip().lower().replace("-", "_")
        if text not in choices:
            raise ValueError
        return text

    return Kind("choice", "one of " + ", ".join(choices), parse)


def _text(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError
    return text


def _optional_text(value: Any) -> str | None:
    text = str(value).strip()
    return text or None


def _buckets(value: Any) -> tuple[float, ...]:
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    numbers = tuple(float(v) for v in items)
    if not numbers or any(b <= a for a, b in itertools.pairwise(numbers)) or numbers[0] <= 0:
        raise ValueError
    return numbers


BOOL = Kind("boolean", "true or false (also 1/0, yes/no, on/off)", _bool)
TEXT = Kind("text", "a non-empty text", _text)
OPTIONAL_TEXT = Kind("text", "a text (empty: not set)", _optional_text)
BUCKETS = Kind("list", "increasing positive numbers, comma-separated (TOML: an array)", _buckets)


# -- the options -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One configuration option: where it lives, its variable, default, kind, and what it does."""

    section: str
    key: str
    env: str
    default: Any
    kind: Kind
    doc: str
    secret: bool = False

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}"


_DEFAULT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Every option, in the order the reference page lists them.
OPTIONS: tuple[Option, ...] = (
    Option(
        "store",
        "url",
        "EVENTCORE_STORE",
        None,
        OPTIONAL_TEXT,
        "Which store to open: `memory`, a DuckDB file path, or a `postgresql://` URL. "
        "Unset: `database.url` if set, else the DuckDB file `eventcore.duckdb`.",
        secret=True,
    ),
    Option(
        "database",
        "url",
        "EVENTCORE_DATABASE_URL",
        None,
        OPTIONAL_TEXT,
        "PostgreSQL connection URL, used when `store.url` is not set.",
        secret=True,
    ),
    Option(
        "database",
        "schema",
        "EVENTCORE_DATABASE_SCHEMA",
        "eventcore",
        TEXT,
        "PostgreSQL schema that holds the events.",
    ),
    Option(
        "database",
        "max_connections",
        "EVENTCORE_DATABASE_MAX_CONNECTIONS",
        10,
        _int(1),
        "Largest connection pool of one process.",
    ),
    Option(
        "database",
        "min_connections",
        "EVENTCORE_DATABASE_MIN_CONNECTIONS",
        2,
        _int(0),
        "Connections the pool keeps open.",
    ),
    Option(
        "database",
        "connect_timeout",
        "EVENTCORE_DATABASE_CONNECT_TIMEOUT",
        5.0,
        _duration(),
        "How long connecting may take (seconds; libpq rounds up to whole seconds, at least 2).",
    ),
    Option(
        "database",
        "acquire_timeout",
        "EVENTCORE_DATABASE_ACQUIRE_TIMEOUT",
        10.0,
        _duration(),
        "How long an operation waits for a free pooled connection before ES003.",
    ),
    Option(
        "database",
        "cache_events",
        "EVENTCORE_DATABASE_CACHE_EVENTS",
        0,
        _int(0),
        "Events kept in the PostgreSQL store's stream cache (0: no cache).",
    ),
    Option(
        "commands",
        "default_timeout",
        "EVENTCORE_COMMAND_DEFAULT_TIMEOUT",
        30.0,
        _duration(),
        "Time budget of one command, retries included (CE006 when exceeded).",
    ),
    Option(
        "commands",
        "max_retries",
        "EVENTCORE_COMMAND_MAX_RETRIES",
        5,
        _int(0),
        "Retries after the first attempt.",
    ),
    Option(
        "commands",
        "retry_delay",
        "EVENTCORE_COMMAND_RETRY_DELAY_MS",
        0.05,
        _duration("ms"),
        "Delay before the first retry.",
    ),
    Option(
        "commands",
        "max_retry_delay",
        "EVENTCORE_COMMAND_MAX_RETRY_DELAY_MS",
        1.0,
        _duration("ms"),
        "Cap on the delay between retries.",
    ),
    Option(
        "commands",
        "backoff_multiplier",
        "EVENTCORE_COMMAND_BACKOFF_MULTIPLIER",
        2.0,
        _float(1.0),
        "Factor by which each delay grows.",
    ),
    Option(
        "commands",
        "retry_jitter",
        "EVENTCORE_COMMAND_RETRY_JITTER",
        True,
        BOOL,
        "Spread each delay over [d/2, d] so that clients do not retry in step.",
    ),
    Option(
        "commands",
        "retry_policy",
        "EVENTCORE_COMMAND_RETRY_POLICY",
        "all",
        _choice("none", "concurrency_conflicts_only", "all"),
        "Which errors are retried: `all` (conflicts and transient store errors), "
        "`concurrency_conflicts_only`, or `none`.",
    ),
    Option(
        "commands",
        "max_discovery_iterations",
        "EVENTCORE_COMMAND_MAX_DISCOVERY_ITERATIONS",
        10,
        _int(1),
        "Passes of dynamic stream discovery before CE008.",
    ),
    Option(
        "projections",
        "batch_size",
        "EVENTCORE_PROJECTION_BATCH_SIZE",
        100,
        _int(1),
        "Events a runner reads and applies per batch (a checkpoint per batch).",
    ),
    Option(
        "projections",
        "error_handling",
        "EVENTCORE_PROJECTION_ERROR_HANDLING",
        "skip_and_log",
        _choice("skip_and_log", "fail_fast", "retry"),
        "What a runner does when a projection raises: skip the event, stop, or retry it.",
    ),
    Option(
        "projections",
        "retries",
        "EVENTCORE_PROJECTION_RETRIES",
        3,
        _int(0),
        "Retries of one event under `retry`.",
    ),
    Option(
        "projections",
        "poll_interval",
        "EVENTCORE_PROJECTION_POLL_INTERVAL",
        0.25,
        _duration(),
        "How long a live runner waits for new events between checks.",
    ),
    Option(
        "metrics",
        "enabled",
        "EVENTCORE_METRICS_ENABLED",
        True,
        BOOL,
        "Collect Prometheus metrics (needs the `metrics` extra).",
    ),
    Option(
        "metrics",
        "address",
        "EVENTCORE_METRICS_ADDRESS",
        "127.0.0.1",
        TEXT,
        "Address the `/metrics` endpoint listens on.",
    ),
    Option(
        "metrics",
        "port",
        "EVENTCORE_METRICS_PORT",
        9090,
        _int(0),
        "Port of the `/metrics` endpoint (0: any free port).",
    ),
    Option(
        "metrics",
        "latency_buckets",
        "EVENTCORE_METRICS_LATENCY_BUCKETS",
        _DEFAULT_BUCKETS,
        BUCKETS,
        "Histogram buckets (seconds) of command and store latencies.",
    ),
    Option(
        "tracing",
        "enabled",
        "EVENTCORE_TRACING_ENABLED",
        False,
        BOOL,
        "Record OpenTelemetry spans (needs the `tracing` extra). Off by default: the manual says both.",
    ),
    Option(
        "tracing",
        "sample_rate",
        "EVENTCORE_TRACING_SAMPLE_RATE",
        0.1,
        _float(0.0, 1.0),
        "Share of new traces that are sampled; a continued trace keeps its parent's choice.",
    ),
    Option(
        "tracing",
        "service_name",
        "EVENTCORE_TRACING_SERVICE_NAME",
        "eventcore-lab",
        TEXT,
        "`service.name` resource attribute of the spans.",
    ),
    Option(
        "logging",
        "level",
        "EVENTCORE_LOG_LEVEL",
        "info",
        _choice("trace", "debug", "info", "warn", "warning", "error"),
        "Level of the `eventcore_lab` loggers (`trace` means debug).",
    ),
    Option(
        "logging",
        "format",
        "EVENTCORE_LOG_FORMAT",
        "json",
        _choice("json", "text"),
        "One JSON object per line, or text.",
    ),
    Option(
        "logging",
        "include_locations",
        "EVENTCORE_LOG_INCLUDE_LOCATIONS",
        False,
        BOOL,
        "Add the source file and line to every record.",
    ),
    Option(
        "health",
        "lag_warning",
        "EVENTCORE_HEALTH_LAG_WARNING",
        300.0,
        _duration(),
        "Projection lag above which health is `degraded` (the manual's 5 minutes).",
    ),
    Option(
        "health",
        "lag_critical",
        "EVENTCORE_HEALTH_LAG_CRITICAL",
        1800.0,
        _duration(),
        "Projection lag above which health is `unhealthy` (the manual's 30 minutes).",
    ),
)

_BY_PATH = {o.path: o for o in OPTIONS}
CONFIG_FILE_ENV = "EVENTCORE_CONFIG"


# -- the typed object --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventCoreConfig:
    """The effective configuration: ``values`` by ``section.key`` and where each came from."""

    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    #: ``EVENTCORE_*`` variables in the environment that are not options (``eventcore-lab config``
    #: lists them, so that a misspelt variable does not go unnoticed).
    unread: tuple[str, ...] = ()

    def __getitem__(self, path: str) -> Any:
        return self.values[path]

    # typed accessors for what the library builds from the configuration

    def store_url(self) -> str:
        return str(self["store.url"] or self["database.url"] or "eventcore.duckdb")

    def retry(self) -> RetryConfig:
        policy = self["commands.retry_policy"]
        return RetryConfig(
            max_attempts=0 if policy == "none" else self["commands.max_retries"],
            initial_delay=self["commands.retry_delay"],
            max_delay=self["commands.max_retry_delay"],
            multiplier=self["commands.backoff_multiplier"],
            jitter=self["commands.retry_jitter"],
            retry_transient=policy == "all",
        )

    def open_store(self, **kwargs: Any) -> Any:
        """Open the configured store, with the pool settings for PostgreSQL."""
        url = self.store_url()
        if url.startswith(("postgresql://", "postgres://")):
            from .stores.postgres import PostgresStore

            return PostgresStore(
                url,
                schema=self["database.schema"],
                pool_min=min(self["database.min_connections"], self["database.max_connections"]),
                pool_max=self["database.max_connections"],
                pool_timeout=self["database.acquire_timeout"],
                connect_timeout=self["database.connect_timeout"],
                cache_events=self["database.cache_events"],
                **kwargs,
            )
        from .stores import open_store

        return open_store(url, **kwargs)

    def executor_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~eventcore_lab.core.executor.Executor`."""
        return {
            "retry": self.retry(),
            "timeout": self["commands.default_timeout"],
            "max_discovery_iterations": self["commands.max_discovery_iterations"],
        }

    def runner_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~eventcore_lab.projections.ProjectionRunner`."""
        policy = {"skip_and_log": "skip", "fail_fast": "stop", "retry": "retry"}
        return {
            "batch_size": self["projections.batch_size"],
            "error_policy": policy[self["projections.error_handling"]],
            "retries": self["projections.retries"],
            "poll_interval": self["projections.poll_interval"],
        }

    def serve_metrics(self, observer: Any) -> tuple[Any, int]:
        """Serve ``observer``'s metrics on the configured address and port; returns (server, port)."""
        from .observability.metrics import serve_metrics

        return serve_metrics(observer, self["metrics.port"], self["metrics.address"])

    def health_options(self) -> dict[str, float]:
        return {"lag_warning": self["health.lag_warning"], "lag_critical": self["health.lag_critical"]}

    def observers(self) -> list[Any]:
        """The observers the monitoring options ask for (metrics and/or tracing)."""
        found: list[Any] = []
        if self["metrics.enabled"]:
            from .observability.metrics import MetricsObserver

            found.append(MetricsObserver(buckets=self["metrics.latency_buckets"]))
        if self["tracing.enabled"]:
            found.append(self.tracing_observer())
        return found

    def tracing_observer(self) -> Any:
        """A TracingObserver on an SDK tracer provider with the configured sampler and service name."""
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        from .observability.tracing import TracingObserver

        provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(self["tracing.sample_rate"])),
            resource=Resource.create({"service.name": self["tracing.service_name"]}),
        )
        return TracingObserver(tracer_provider=provider)

    def configure_logging(self, **kwargs: Any) -> Any:
        from .observability.logs import configure_logging

        level = {"trace": "debug", "warn": "warning"}.get(self["logging.level"], self["logging.level"])
        return configure_logging(
            level, self["logging.format"], include_location=self["logging.include_locations"], **kwargs
        )

    def describe(self) -> list[dict[str, Any]]:
        """Every option: key, variable, effective value (secrets redacted) and its source."""
        return [
            {
                "key": o.path,
                "env": o.env,
                "value": _redact(self.values[o.path]) if o.secret else _plain(self.values[o.path]),
                "source": self.sources.get(o.path, "default"),
            }
            for o in OPTIONS
        ]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _redact(value: Any) -> Any:
    """Hide passwords in store URLs and DSNs (``user:pw@``, ``password=pw``); other text (a DuckDB path,
    ``memory``) is not secret and shows as it is."""
    if value is None:
        return None
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", str(value))
    return re.sub(r"(password=)[^&\s]*", r"\1***", text, flags=re.IGNORECASE)


# -- loading -----------------------------------------------------------------------------------------


def _parse(option: Option, raw: Any, where: str) -> Any:
    try:
        return option.kind.parse(raw)
    except (ValueError, TypeError):
        shown = _redact(raw) if option.secret else raw
        raise InvalidConfigValue(
            f"{where} = {shown!r} is not valid: expected {option.kind.allowed}"
        ) from None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> EventCoreConfig:
    """Build the effective configuration (defaults < TOML file < environment < overrides)."""
    env = os.environ if env is None else env
    values = {o.path: o.default for o in OPTIONS}
    sources = {o.path: "default" for o in OPTIONS}
    file = path if path is not None else env.get(CONFIG_FILE_ENV) or None
    if file is not None:
        for key, raw in _read_toml(Path(file)).items():
            option = _BY_PATH.get(key)
            if option is None:
                known = ", ".join(sorted({o.section for o in OPTIONS}))
                raise InvalidConfigValue(
                    f"{file}: unknown option {key!r}; sections are {known} (see eventcore-lab config)"
                )
            values[key] = _parse(option, raw, f"{file}: {key}")
            sources[key] = f"file {file}"
    for option in OPTIONS:
        if option.env in env:
            values[option.path] = _parse(option, env[option.env], option.env)
            sources[option.path] = f"env {option.env}"
    options_env = {o.env for o in OPTIONS} | {CONFIG_FILE_ENV}
    unread = tuple(sorted(name for name in env if name.startswith("EVENTCORE_") and name not in options_env))
    for key, raw in (overrides or {}).items():
        option = _BY_PATH.get(key)
        if option is None:
            raise InvalidConfigValue(f"unknown option {key!r}")
        if raw is None:
            continue
        values[key] = _parse(option, raw, key)
        sources[key] = "override"
    if values["health.lag_critical"] < values["health.lag_warning"]:
        raise InvalidConfigValue(
            f"health.lag_critical ({values['health.lag_critical']} s) must be >= health.lag_warning "
            f"({values['health.lag_warning']} s)"
        )
    return EventCoreConfig(values, sources, unread)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingConfig(f"configuration file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfigValue(f"{path} is not valid TOML: {exc}") from exc
    flat: dict[str, Any] = {}
    for section, body in data.items():
        if not isinstance(body, dict):
            raise InvalidConfigValue(f"{path}: {section!r} must be a [section] table")
        for key, value in body.items():
            flat[f"{section}.{key}"] = value
    return flat


# -- the reference page ------------------------------------------------------------------------------


def reference_markdown() -> str:
    """The configuration reference (manual 7.2) as Markdown, generated from :data:`OPTIONS`."""
    lines = [
        "# 7.2 Configuration reference",
        "",
        "<!-- Generated by `python -m eventcore_lab.config > book/reference/configuration.md`; "
        "do not edit by hand. -->",
        "",
        "Every option of eventcore-lab, with its `EVENTCORE_*` variable, default and effect. Values come "
        "from, lowest to highest precedence: the defaults; a TOML file (`--config FILE` or "
        "`$EVENTCORE_CONFIG`); the environment; command-line flags. A bad value is refused with "
        "error CF002 naming the variable, the value and what is allowed. `eventcore-lab config` prints "
        "the effective values and where each came from, with secrets redacted.",
        "",
        "In the TOML file each section is a table, for example:",
        "",
        "```toml",
        "[commands]",
        "max_retries = 3",
        'retry_delay = "100ms"',
        "",
        "[projections]",
        'error_handling = "fail_fast"',
        "```",
        "",
    ]
    for section in dict.fromkeys(o.section for o in OPTIONS):
        lines += [
            f"## `[{section}]`",
            "",
            "| key | variable | default | allowed | what it does |",
            "|---|---|---|---|---|",
        ]
        for o in OPTIONS:
            if o.section == section:
                default = "(unset)" if o.default is None else _plain(o.default)
                if isinstance(default, list):
                    default = ", ".join(str(v) for v in default)
                lines.append(f"| `{o.key}` | `{o.env}` | `{default}` | {o.kind.allowed} | {o.doc} |")
        lines.append("")
    lines += [
        "## Options of the manual that are not here",
        "",
        "The manual's pool `idle_timeout`, `max_lifetime` and `test_before_acquire`, the migration options, "
        "checkpoint intervals, `max_concurrent_commands`, batching, security (JWT, TLS, encryption) and "
        "log outputs other than a stream have no counterpart in this library yet, so they are not "
        "offered as options that would do nothing. `eventcore-lab config` lists every `EVENTCORE_*` "
        "variable it did not read, so that a misspelt name is seen.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    print(reference_markdown(), end="")


if __name__ == "__main__":
    main()


__all__ = [
    "OPTIONS",
    "ConfigError",
    "EventCoreConfig",
    "InvalidConfigValue",
    "MissingConfig",
    "Option",
    "load_config",
    "reference_markdown",
]
