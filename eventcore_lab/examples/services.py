"""Two services that exchange events through a broker (manual 5.4): *users* and *orders*.

Each owns its streams. The users service registers users; the orders service turns every registered
user into a customer profile (a command of its own, run through a :class:`CommandInbox`) and publishes
``CustomerProfileCreated`` back; the users service links the profile to the user (an
:class:`EventInbox`). ``python -m eventcore_lab.examples.services orders --store PATH --nats URL
--namespace NS --stop-file PATH`` runs the orders service in its own process (the 5.4 tutorial does).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec

from ..core.command import Command, CommandContext, emit, require, stream
from ..core.events import EventToWrite, StoredEvent
from ..core.executor import Executor
from ..core.registry import Event
from ..integration import (
    CommandInbox,
    ContractCatalog,
    InboxConsumer,
    IntegrationMessage,
    OutboxRelay,
    Router,
    RoutingRule,
)

# -- the users service -----------------------------------------------------------------------------


class UserRegistered(Event):
    registration = "on_first_use"
    user_id: str
    email: str
    name: str


class UserEmailChanged(Event):
    registration = "on_first_use"
    user_id: str
    email: str


class UserProfileLinked(Event):
    registration = "on_first_use"
    user_id: str
    customer_id: str


def user_stream(user_id: str) -> str:
    return f"user-{user_id}"


class RegisterUser(Command[bool]):
    user: str = stream()
    user_id: str
    email: str
    name: str

    def initial_state(self) -> bool:
        return False

    def apply(self, state: bool, event: StoredEvent) -> bool:
        return state or isinstance(event.payload, UserRegistered)

    def handle(self, state: bool, ctx: CommandContext) -> Sequence[EventToWrite]:
        require("@" in self.email, f"not an email address: {self.email!r}")
        require(not state, f"user {self.user_id} is already registered")
        return [emit(self.user, UserRegistered(user_id=self.user_id, email=self.email, name=self.name))]


def link_profile(message: IntegrationMessage) -> list[EventToWrite]:
    """The users service's inbox handler: remember which customer profile the orders service made."""
    if message.event_type != "CustomerProfileCreated":
        return []  # other types are not for us (the manual: ignore unknown types)
    created = message.decode(CustomerProfileCreated)
    return [
        EventToWrite(
            user_stream(created.user_id),
            UserProfileLinked(user_id=created.user_id, customer_id=created.customer_id),
        )
    ]


def users_catalog() -> ContractCatalog:
    catalog = ContractCatalog()
    catalog.publish(UserRegistered, service="users")
    catalog.publish(UserEmailChanged, service="users")
    return catalog


def users_router() -> Router:
    """What the users service publishes, and to whom: full events to orders, masked ones to analytics."""
    return Router(
        [
            RoutingRule("users", "User*", ("orders",)),
            RoutingRule("users", "UserRegistered", ("analytics",), transformation="anonymize_pii"),
        ]
    )


# -- the orders service ----------------------------------------------------------------------------


class CustomerProfileCreated(Event):
    registration = "on_first_use"
    customer_id: str
    user_id: str
    email: str


class CustomerEmailUpdated(Event):
    registration = "on_first_use"
    customer_id: str
    email: str


class RegisteredUser(msgspec.Struct):
    """What the orders service needs of ``UserRegistered`` (its consumer contract)."""

    user_id: str
    email: str


def customer_stream(user_id: str) -> str:
    return f"customer-{user_id}"


class CreateCustomerProfile(Command[bool]):
    customer: str = stream()
    user_id: str
    email: str

    def initial_state(self) -> bool:
        return False

    def apply(self, state: bool, event: StoredEvent) -> bool:
        return state or isinstance(event.payload, CustomerProfileCreated)

    def handle(self, state: bool, ctx: CommandContext) -> Sequence[EventToWrite]:
        if state:
            return []  # a profile exists already: nothing to do
        created = CustomerProfileCreated(customer_id=self.customer, user_id=self.user_id, email=self.email)
        return [emit(self.customer, created)]


class UpdateCustomerEmail(Command[bool]):
    customer: str = stream()
    email: str

    def initial_state(self) -> bool:
        return False

    def apply(self, state: bool, event: StoredEvent) -> bool:
        return state or isinstance(event.payload, CustomerProfileCreated)

    def handle(self, state: bool, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(state, f"no customer profile {self.customer}")
        return [emit(self.customer, CustomerEmailUpdated(customer_id=self.customer, email=self.email))]


def command_for(message: IntegrationMessage) -> Command[bool] | None:
    """The orders service's translation of users' events into its own commands."""
    if message.event_type == "UserRegistered":
        user = message.decode(RegisteredUser)
        return CreateCustomerProfile(customer_stream(user.user_id), user.user_id, user.email)
    if message.event_type == "UserEmailChanged":
        changed = message.decode(UserEmailChanged)
        return UpdateCustomerEmail(customer_stream(changed.user_id), changed.email)
    return None


def orders_router() -> Router:
    return Router([RoutingRule("orders", "CustomerProfileCreated", ("users",))])


def run_orders_service(store_path: Path, nats_url: str, namespace: str, stop_file: Path) -> None:
    """The orders service: consume users' events into commands, publish its own events, until told to stop."""
    from ..integration.jetstream import JetStreamBroker
    from ..stores.duckdb import DuckDBStore

    with DuckDBStore(store_path) as store, JetStreamBroker(nats_url, namespace=namespace) as broker:
        inbox = CommandInbox(Executor(store), "from_users", command_for)
        consumer = InboxConsumer(
            lambda after: broker.open_source("orders", after=after), inbox, batch_size=100
        )
        relay = OutboxRelay(store, broker, orders_router(), service_id="orders", batch_size=100)
        print("orders service ready", flush=True)
        while not stop_file.exists():
            consumer.step(wait=0.02)
            relay.step()
            time.sleep(0.001)
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="run one of the example services")
    parser.add_argument("service", choices=["orders"])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--stop-file", type=Path, required=True)
    args = parser.parse_args()
    run_orders_service(args.store, args.nats, args.namespace, args.stop_file)


if __name__ == "__main__":
    main()


__all__ = [
    "CreateCustomerProfile",
    "CustomerEmailUpdated",
    "CustomerProfileCreated",
    "RegisterUser",
    "RegisteredUser",
    "UpdateCustomerEmail",
    "UserEmailChanged",
    "UserProfileLinked",
    "UserRegistered",
    "command_for",
    "customer_stream",
    "link_profile",
    "orders_router",
    "run_orders_service",
    "user_stream",
    "users_catalog",
    "users_router",
]
