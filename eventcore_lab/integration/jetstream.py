"""The NATS JetStream adapter: the first-class broker of this package.

Why JetStream: a publish is confirmed by an ack once the message is stored; the server drops a message
whose ``Nats-Msg-Id`` it already stored within the stream's duplicate window (so a relay that republishes
after a crash does not create copies); a stream keeps messages in order and any reader can replay it from
a sequence number, which is what lets a consumer keep its cursor in its *own* store. The client
(``nats-py``) is maintained by the NATS authors; it is asyncio-only, so this adapter runs it on a private
loop thread.

Each target is one JetStream stream ``<namespace>_<target>`` with subjects ``<namespace>.<target>.>``;
a message goes to ``<namespace>.<target>.<event type>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ..core.errors import InvalidFormat
from ._loop import LoopThread
from .broker import Delivery, Outgoing
from .errors import BrokerUnavailable, InvalidMessage, PublishFailed
from .messages import decode_message, encode_message

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def _require_nats() -> Any:
    try:
        import nats
    except ImportError as exc:  # the optional extra is missing
        raise BrokerUnavailable(
            "the NATS client is not installed; install eventcore-lab[broker] (package nats-py)",
            retriable=False,
        ) from exc
    return nats


class JetStreamBroker:
    """Publisher and message source on a NATS server with JetStream.

    ``ack_timeout`` bounds the wait for a batch's confirmations; ``duplicate_window`` (seconds) is how
    long the server remembers message ids of a target it creates. Connects lazily and keeps trying to
    reconnect in the background, so a broker that comes back is used again without a restart.
    """

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        namespace: str = "eventcore",
        ack_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        duplicate_window: float = 120.0,
    ) -> None:
        if not _NAME.match(namespace):
            raise InvalidFormat(f"namespace must be 1-64 letters, digits, '_' or '-', got {namespace!r}")
        self.url = url
        self.namespace = namespace
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self.duplicate_window = duplicate_window
        self._nats = _require_nats()
        self._loop = LoopThread(f"jetstream-{namespace}")
        self._nc: Any = None
        self._js: Any = None
        self._ready: set[str] = set()

    # -- names ---------------------------------------------------------------------------------------

    @property
    def targets(self) -> tuple[str, ...]:
        """The targets this broker object created or checked (to clean up after a test)."""
        return tuple(sorted(self._ready))

    def stream_name(self, target: str) -> str:
        if not _NAME.match(target):
            raise InvalidFormat(f"target must be 1-64 letters, digits, '_' or '-', got {target!r}")
        return f"{self.namespace}_{target}"

    def subject(self, target: str, event_type: str) -> str:
        return f"{self.namespace}.{target}.{_TOKEN_UNSAFE.sub('_', event_type) or '_'}"

    # -- connection ----------------------------------------------------------------------------------

    async def _connection(self) -> Any:
        if self._nc is not None and not self._nc.is_closed:
            return self._js
        try:
            # Bounded here: with endless reconnects the client would also retry a first connect forever.
            self._nc = await asyncio.wait_for(self._connect(), timeout=self.connect_timeout * 2)
        except Exception as exc:  # nats raises OSError, TimeoutError, NoServersError...
            self._nc = None
            raise BrokerUnavailable(f"cannot connect to NATS at {self.url}: {exc!r}") from exc
        self._js = self._nc.jetstream(timeout=self.ack_timeout)
        return self._js

    async def _connect(self) -> Any:
        return await self._nats.connect(
            self.url,
            connect_timeout=self.connect_timeout,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            name=f"eventcore-lab {self.namespace}",
            error_cb=_quiet,
            disconnected_cb=_quiet_event,
            reconnected_cb=_quiet_event,
            closed_cb=_quiet_event,
        )

    def _run(self, coro: Any, what: str) -> Any:
        try:
            return self._loop.run(coro, timeout=self.ack_timeout + self.connect_timeout + 5)
        except TimeoutError as exc:
            raise BrokerUnavailable(f"NATS did not answer in time ({what})") from exc

    # -- targets -------------------------------------------------------------------------------------

    def ensure_targets(self, targets: Iterable[str]) -> None:
        missing = [t for t in targets if t not in self._ready]
        if missing:
            self._run(self._ensure(missing), "creating streams")
            self._ready.update(missing)

    async def _ensure(self, targets: list[str]) -> None:
        from nats.js.api import StreamConfig

        js = await self._connection()
        for target in targets:
            config = StreamConfig(
                name=self.stream_name(target),
                subjects=[f"{self.namespace}.{target}.>"],
                duplicate_window=self.duplicate_window,
            )
            try:
                await js.add_stream(config)
            except Exception as exc:
                raise BrokerUnavailable(
                    f"cannot create JetStream stream for target {target!r}: {exc!r}"
                ) from exc

    def delete_targets(self, targets: Iterable[str]) -> None:
        """Remove these targets' streams and their messages (tests and notebooks clean up with it)."""
        self._run(self._delete(list(targets)), "deleting streams")

    async def _delete(self, targets: list[str]) -> None:
        from nats.js.errors import NotFoundError

        js = await self._connection()
        for target in targets:
            self._ready.discard(target)
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(self.stream_name(target))

    def last_sequence(self, target: str) -> int:
        """The sequence of the newest message of ``target`` (0 when empty)."""
        return int(self._run(self._last_sequence(target), "stream info"))

    async def _last_sequence(self, target: str) -> int:
        js = await self._connection()
        info = await js.stream_info(self.stream_name(target))
        return int(info.state.last_seq)

    # -- publishing ----------------------------------------------------------------------------------

    def publish(self, messages: Sequence[Outgoing]) -> None:
        if not messages:
            return
        self.ensure_targets(dict.fromkeys(m.target for m in messages))
        confirmed = self._run(self._publish(messages), "publishing")
        if confirmed < len(messages):
            raise PublishFailed(
                f"NATS confirmed {confirmed} of {len(messages)} messages within {self.ack_timeout} s",
                confirmed=confirmed,
            )

    async def _publish(self, messages: Sequence[Outgoing]) -> int:
        # Encode first: a message that cannot be encoded is a bug to report, not a broker failure.
        frames = [
            (self.subject(m.target, m.message.event_type), encode_message(m.message), m.message.message_id)
            for m in messages
        ]
        try:
            js = await self._connection()
        except BrokerUnavailable:
            return 0
        futures: list[asyncio.Future[Any]] = []
        try:
            # Sent one after the other on one connection, so the server stores them in this order. One
            # timer for the whole batch (a per-message stall timeout costs more than the publish).
            async with asyncio.timeout(self.ack_timeout):
                for subject, body, message_id in frames:
                    futures.append(await js.publish_async(subject, body, headers={"Nats-Msg-Id": message_id}))
        except Exception:  # timed out, buffer full or connection closed: what was sent may still be confirmed
            pass
        if futures:
            await asyncio.wait(futures, timeout=self.ack_timeout)
        confirmed = 0
        for future in futures:
            if not future.done():
                break
            if future.cancelled() or future.exception() is not None:
                break
            confirmed += 1
        for future in futures:
            if not future.done():
                future.cancel()  # frees the client's slot for unconfirmed publishes
        return confirmed

    # -- reading -------------------------------------------------------------------------------------

    def open_source(self, target: str, *, after: int = 0) -> JetStreamSource:
        self.ensure_targets([target])
        return JetStreamSource(self, target, after)

    def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                self._loop.run(self._nc.close(), timeout=5)
            self._nc = None
        self._loop.stop()

    def __enter__(self) -> JetStreamBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JetStreamSource:
    """Reads one target in stream order from ``after`` on, through an ephemeral pull consumer.

    The consumer acknowledges nothing on the server: the cursor is the sequence the caller stored. If
    the sequence jumps (a message lost between a timed-out fetch and the next), the consumer is created
    again from the last sequence returned, so no message is skipped.
    """

    def __init__(self, broker: JetStreamBroker, target: str, after: int) -> None:
        self._broker = broker
        self.target = target
        self.position = after
        self._sub: Any = None
        self.gaps_repaired = 0
        #: Messages that were not integration envelopes: (sequence, why). Passed over, not retried forever.
        self.invalid: list[tuple[int, str]] = []

    async def _subscription(self) -> Any:
        if self._sub is None:
            from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

            js = await self._broker._connection()
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.position + 1,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=60.0,
            )
            self._sub = await js.pull_subscribe(
                f"{self._broker.namespace}.{self.target}.>",
                durable=None,
                stream=self._broker.stream_name(self.target),
                config=config,
            )
        return self._sub

    async def _drop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        from nats.errors import TimeoutError as NatsTimeout

        try:
            sub = await self._subscription()
            raw = await sub.fetch(max_messages, timeout=timeout)
        except (TimeoutError, NatsTimeout):
            return []
        except BrokerUnavailable:
            raise
        except Exception as exc:
            await self._drop()
            raise BrokerUnavailable(f"reading target {self.target!r} failed: {exc!r}") from exc
        deliveries = []
        expected = self.position + 1
        for msg in raw:
            sequence = int(msg.metadata.sequence.stream)
            if sequence < expected:
                continue  # already returned (a consumer recreated from an older point)
            if sequence > expected and not await self._gap_is_real(expected):
                self.gaps_repaired += 1
                await self._drop()
                break
            expected = sequence + 1
            try:
                deliveries.append(Delivery(sequence, decode_message(msg.data)))
            except InvalidMessage as exc:
                self.invalid.append((sequence, exc.message))
        self.position = expected - 1
        return deliveries

    async def _gap_is_real(self, expected: int) -> bool:
        """Whether messages before ``expected`` were removed (retention), so jumping over them is right."""
        js = await self._broker._connection()
        info = await js.stream_info(self._broker.stream_name(self.target))
        return int(info.state.first_seq) > expected

    def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        return list(self._broker._run(self._fetch(max_messages, timeout), "fetching"))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._broker._run(self._drop(), "closing a reader")


async def _quiet(exc: Exception) -> None:
    """The client reports connection trouble here; the adapter reports it through its own errors."""


async def _quiet_event() -> None:
    return None
