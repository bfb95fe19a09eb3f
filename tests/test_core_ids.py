"""Stream ids are validated; event ids are strictly increasing UUIDv7s."""

import itertools
import threading

import pytest

from eventcore_lab.core.errors import EmptyValue, InvalidFormat, TooLong
from eventcore_lab.core.ids import StreamId, new_event_id


def test_stream_id_trims_and_stays_a_string() -> None:
    sid = StreamId("  account-1\t")
    assert sid == "account-1" and isinstance(sid, str)
    assert {sid: 1}["account-1"] == 1
    assert StreamId("é" * 255) == "é" * 255


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        ("", EmptyValue, "empty"),
        ("   ", EmptyValue, "blank"),
        ("x" * 256, TooLong, "256 characters"),
        ("a\x00b", InvalidFormat, "control character"),
        ("a\x1bb", InvalidFormat, "control character"),
        (42, InvalidFormat, "must be a string"),
    ],
)
def test_bad_stream_ids_name_the_rule_broken(value: object, error: type, words: str) -> None:
    with pytest.raises(error, match=words) as raised:
        StreamId(value)  # type: ignore[arg-type]
    assert raised.value.code.startswith("VE")


def test_100k_event_ids_strictly_increase() -> None:
    ids = [new_event_id() for _ in range(100_000)]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert ids[0].version == 7


def test_event_ids_increase_across_threads() -> None:
    made: list[list] = [[] for _ in range(4)]

    def make(bucket: list) -> None:
        bucket.extend(new_event_id() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(bucket,)) for bucket in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [i for bucket in made for i in bucket]
    assert len(set(everything)) == 20_000
    for bucket in made:
        assert bucket == sorted(bucket)
