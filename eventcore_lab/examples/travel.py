"""Travel booking: the manual's saga (hotel, then flight, then car), with a compensation for each step.

Each resource is a stream with a capacity (``hotel-<name>`` rooms, ``flight-<number>`` seats,
``cars-<agency>`` cars); a booking writes to the resource and to the trip's ``reservation-<id>`` stream in
one atomic append, and is refused ("No availability") when the capacity is used up. Booking or cancelling
twice for the same reservation is refused too, so a command is never applied twice even if asked twice.
The saga's stream is ``booking-saga-<reservation id>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from eventcore_lab.core.command import Command, CommandContext, emit, require, stream
from eventcore_lab.core.events import EventToWrite, StoredEvent
from eventcore_lab.core.registry import Event
from eventcore_lab.processes import Saga, SagaStep


def reservation_stream(reservation_id: str) -> str:
    return f"reservation-{reservation_id}"


def hotel_stream(hotel: str) -> str:
    return f"hotel-{hotel}"


def flight_stream(flight: str) -> str:
    return f"flight-{flight}"


def cars_stream(agency: str) -> str:
    return f"cars-{agency}"


class TripRequested(Event):
    registration = "on_first_use"
    event_type = "travel.TripRequested"
    reservation_id: str
    hotel: str
    flight: str
    car_agency: str


class CapacityAdded(Event):
    """Rooms, seats or cars made available on a resource stream."""

    registration = "on_first_use"

    event_type = "travel.CapacityAdded"
    resource: str
    units: int


class HotelBooked(Event):
    registration = "on_first_use"
    event_type = "travel.HotelBooked"
    hotel: str
    reservation_id: str


class HotelCancelled(Event):
    registration = "on_first_use"
    event_type = "travel.HotelCancelled"
    hotel: str
    reservation_id: str


class FlightBooked(Event):
    registration = "on_first_use"
    event_type = "travel.FlightBooked"
    flight: str
    reservation_id: str


class FlightCancelled(Event):
    registration = "on_first_use"
    event_type = "travel.FlightCancelled"
    flight: str
    reservation_id: str


class CarBooked(Event):
    registration = "on_first_use"
    event_type = "travel.CarBooked"
    agency: str
    reservation_id: str


class CarCancelled(Event):
    registration = "on_first_use"
    event_type = "travel.CarCancelled"
    agency: str
    reservation_id: str


@dataclass
class Resource:
    """Capacity of one resource and the reservations holding a unit of it."""

    capacity: int = 0
    holders: set[str] = field(default_factory=set)


BOOKED = (HotelBooked, FlightBooked, CarBooked)
CANCELLED = (HotelCancelled, FlightCancelled, CarCancelled)


def apply_to_resource(state: Resource, event: StoredEvent) -> Resource:
    match event.payload:
        case CapacityAdded(units=units):
            state.capacity += units
        case HotelBooked(reservation_id=r) | FlightBooked(reservation_id=r) | CarBooked(reservation_id=r):
            state.holders.add(r)
        case (
            HotelCancelled(reservation_id=r)
            | FlightCancelled(reservation_id=r)
            | CarCancelled(reservation_id=r)
        ):
            state.holders.discard(r)
    return state


class AddCapacity(Command[Resource]):
    resource: str = stream()
    units: int

    def initial_state(self) -> Resource:
        return Resource()

    def apply(self, state: Resource, event: StoredEvent) -> Resource:
        return apply_to_resource(state, event)

    def handle(self, state: Resource, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.units > 0, "capacity to add must be positive")
        return [emit(self.resource, CapacityAdded(resource=self.resource, units=self.units))]


class RequestTrip(Command[bool]):
    reservation: str = stream()
    reservation_id: str
    hotel: str
    flight: str
    car_agency: str

    def initial_state(self) -> bool:
        return False

    def apply(self, state: bool, event: StoredEvent) -> bool:
        return state or isinstance(event.payload, TripRequested)

    def handle(self, state: bool, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(not state, f"trip {self.reservation_id} was already requested")
        trip = TripRequested(
            reservation_id=self.reservation_id,
            hotel=self.hotel,
            flight=self.flight,
            car_agency=self.car_agency,
        )
        return [emit(self.reservation, trip)]


class _Booking(Command[Resource]):
    """Book or cancel one unit of a resource for a reservation; written to both streams."""

    booked: ClassVar[type]
    cancelled: ClassVar[type]
    cancel: ClassVar[bool] = False
    what: ClassVar[str] = ""

    resource: str = stream()
    reservation: str = stream()
    name: str
    reservation_id: str

    def initial_state(self) -> Resource:
        return Resource()

    def apply(self, state: Resource, event: StoredEvent) -> Resource:
        return apply_to_resource(state, event) if event.stream_id == self.resource else state

    def handle(self, state: Resource, ctx: CommandContext) -> Sequence[EventToWrite]:
        holds = self.reservation_id in state.holders
        if self.cancel:
            require(holds, f"{self.what} {self.name} holds nothing for reservation {self.reservation_id}")
            event: Any = self.cancelled(self.name, self.reservation_id)  # (resource name, reservation)
        else:
            require(
                not holds, f"{self.what} {self.name} is already booked for reservation {self.reservation_id}"
            )
            require(len(state.holders) < state.capacity, "No availability")
            event = self.booked(self.name, self.reservation_id)
        return [emit(self.resource, event), emit(self.reservation, event)]


class BookHotel(_Booking):
    booked, cancelled, what = HotelBooked, HotelCancelled, "hotel"


class CancelHotel(_Booking):
    booked, cancelled, what, cancel = HotelBooked, HotelCancelled, "hotel", True


class BookFlight(_Booking):
    booked, cancelled, what = FlightBooked, FlightCancelled, "flight"


class CancelFlight(_Booking):
    booked, cancelled, what, cancel = FlightBooked, FlightCancelled, "flight", True


class BookCar(_Booking):
    booked, cancelled, what = CarBooked, CarCancelled, "car agency"


class CancelCar(_Booking):
    booked, cancelled, what, cancel = CarBooked, CarCancelled, "car agency", True


class TravelBookingSaga(Saga):
    """Hotel, flight, car; a refused step compensates the booked ones in reverse order."""

    name = "booking-saga"
    triggers = (TripRequested,)
    commands = (BookHotel, CancelHotel, BookFlight, CancelFlight, BookCar, CancelCar)

    def correlate(self, event: StoredEvent) -> str | None:
        return event.payload.reservation_id if isinstance(event.payload, TripRequested) else None

    def plan(self, event: Any) -> Sequence[SagaStep]:
        trip: TripRequested = event
        reservation = reservation_stream(trip.reservation_id)
        rid = trip.reservation_id
        hotel, flight, cars = (
            hotel_stream(trip.hotel),
            flight_stream(trip.flight),
            cars_stream(trip.car_agency),
        )
        return [
            SagaStep(
                "book_hotel",
                BookHotel(hotel, reservation, trip.hotel, rid),
                CancelHotel(hotel, reservation, trip.hotel, rid),
            ),
            SagaStep(
                "book_flight",
                BookFlight(flight, reservation, trip.flight, rid),
                CancelFlight(flight, reservation, trip.flight, rid),
            ),
            SagaStep(
                "book_car",
                BookCar(cars, reservation, trip.car_agency, rid),
                CancelCar(cars, reservation, trip.car_agency, rid),
            ),
        ]


COMMANDS = (AddCapacity, RequestTrip, BookHotel, CancelHotel, BookFlight, CancelFlight, BookCar, CancelCar)
EVENTS = (
    TripRequested,
    CapacityAdded,
    HotelBooked,
    HotelCancelled,
    FlightBooked,
    FlightCancelled,
    CarBooked,
    CarCancelled,
)
