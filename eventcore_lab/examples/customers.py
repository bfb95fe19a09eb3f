"""Customers with personal data: the security guide's domain (encryption, shredding, authorization).

A customer's name and email are personal data of the customer (``PersonalData(subject="customer_id")``),
so a :class:`~eventcore_lab.security.ProtectedStore` encrypts them with the customer's own key. The
email's blind index (``email_index``) lets a read model find a customer by email without the plaintext.
"""

from __future__ import annotations

from typing import Annotated, Any

from eventcore_lab import Command, Event, emit, require, stream
from eventcore_lab.core.command import CommandContext
from eventcore_lab.core.events import StoredEvent
from eventcore_lab.security import PersonalData


def customer_stream(customer_id: str) -> str:
    return f"customer-{customer_id}"


class CustomerRegistered(Event, frozen=True):
    registration = "on_first_use"

    customer_id: str
    name: Annotated[str, PersonalData(subject="customer_id")]
    email: Annotated[str, PersonalData(subject="customer_id")]
    email_index: str
    tier: str = "standard"


class CustomerEmailChanged(Event, frozen=True):
    registration = "on_first_use"

    customer_id: str
    email: Annotated[str, PersonalData(subject="customer_id")]
    email_index: str


class RegisterCustomer(Command):
    """Register a customer once; ``email_index`` comes from ``ProtectedStore.blind_index``."""

    customer: str = stream()
    customer_id: str
    name: str
    email: str
    email_index: str
    tier: str = "standard"

    def initial_state(self) -> bool:
        return False

    def apply(self, state: bool, event: StoredEvent) -> bool:
        return state or isinstance(event.payload, CustomerRegistered)

    def handle(self, state: bool, ctx: CommandContext) -> list[Any]:
        require(not state, f"customer {self.customer_id} is already registered")
        require("@" in self.email, "email must contain @")
        event = CustomerRegistered(
            customer_id=self.customer_id,
            name=self.name,
            email=self.email,
            email_index=self.email_index,
            tier=self.tier,
        )
        return [emit(self.customer, event)]

    @staticmethod
    def new(
        customer_id: str, name: str, email: str, email_index: str, tier: str = "standard"
    ) -> RegisterCustomer:
        return RegisterCustomer(customer_stream(customer_id), customer_id, name, email, email_index, tier)


class ChangeEmail(Command):
    """Change a registered customer's email; the fold sees the current email in clear."""

    customer: str = stream()
    customer_id: str
    email: str
    email_index: str

    def initial_state(self) -> str | None:
        return None

    def apply(self, state: str | None, event: StoredEvent) -> str | None:
        payload = event.payload
        if isinstance(payload, CustomerRegistered | CustomerEmailChanged):
            return payload.email
        return state

    def handle(self, state: str | None, ctx: CommandContext) -> list[Any]:
        require(state is not None, f"customer {self.customer_id} is not registered")
        require(state != self.email, "the email is unchanged")
        return [
            emit(
                self.customer,
                CustomerEmailChanged(
                    customer_id=self.customer_id, email=self.email, email_index=self.email_index
                ),
            )
        ]

    @staticmethod
    def new(customer_id: str, email: str, email_index: str) -> ChangeEmail:
        return ChangeEmail(customer_stream(customer_id), customer_id, email, email_index)
