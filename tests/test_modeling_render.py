"""Boards (graphviz) and timelines: valid SVG with the expected labels, layout, files, and clear errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from eventcore_lab import EventToWrite, Executor, MemoryStore, Metadata
from eventcore_lab.cli import main as cli_main
from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.examples import banking, coffee, tasks
from eventcore_lab.modeling import COLOURS, GraphvizMissing, Kind, derive_model, timeline
from eventcore_lab.modeling.board import DEFAULT_MAX_WIDTH
from eventcore_lab.modeling.timeline import FIT_WIDTH, stagger
from eventcore_lab.widgets import TimelineSlider

SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> list[tuple[str, float, float]]:
    """(text, x, y) of every <text> element; parsing also proves the SVG is well-formed XML."""
    root = ET.fromstring(svg)
    return [(_own_text(t), float(t.get("x", 0)), float(t.get("y", 0))) for t in root.iter(f"{SVG}text")]


def _own_text(element: ET.Element) -> str:
    """The text shown, without a hover <title> inside the element."""
    parts = [element.text or ""] + [child.tail or "" for child in element]
    return "".join(parts).strip()


def position_of(svg: str, label: str) -> tuple[float, float]:
    found = [(x, y) for text, x, y in texts(svg) if text == label]
    assert found, f"{label!r} is not drawn"
    return found[0]


# -- boards ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [banking, tasks, coffee], ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_board_svg_has_every_element_and_lane(module: Any) -> None:
    model = derive_model(module)
    svg = model.board().svg()
    labels = {text for text, _, _ in texts(svg)}
    for name in model.elements:
        assert name in labels
    for lane in model.lanes:
        assert f"{lane}-*" in labels
    fills = set(re.findall(r'fill="(#[0-9a-f]{6})"', svg))
    assert COLOURS[Kind.EVENT] in fills and COLOURS[Kind.COMMAND] in fills
    if model.read_models:
        assert COLOURS[Kind.READ_MODEL] in fills


def test_board_layout_time_left_to_right_and_lanes_top_down() -> None:
    svg = derive_model(coffee).board(max_width=None).svg()  # one band: the whole timeline in one row
    xs = [position_of(svg, c.__name__)[0] for c in coffee.COMMANDS]
    assert xs == sorted(xs)  # the timeline runs left to right in the order of the slices
    # an event sits under the command that writes it, in its own lane below the command row
    cmd_x, cmd_y = position_of(svg, "PlaceOrder")
    ev_x, ev_y = position_of(svg, "OrderPlaced")
    assert ev_x == pytest.approx(cmd_x, abs=12) and ev_y > cmd_y
    assert position_of(svg, "DailySales")[0] > position_of(svg, "ProcessPayment")[0]  # read model after
    lanes = ["automations", "commands ·", "customer-*", "order-*", "payment-*", "barista-*"]
    ys = [position_of(svg, lane)[1] for lane in lanes]
    assert ys == sorted(ys)
    assert position_of(svg, "CustomerEntered")[1] < position_of(svg, "CoffeePrepared")[1]
    assert position_of(svg, "HandOverPreparedOrders")[1] < cmd_y  # the robot sits on top


@pytest.mark.parametrize("module", [banking, tasks, coffee], ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_board_wraps_into_bands_no_wider_than_max_width(module: Any) -> None:
    model = derive_model(module)
    full = model.board(max_width=None)
    board = model.board()  # the default: DEFAULT_MAX_WIDTH
    width, height = board.size()
    assert width <= DEFAULT_MAX_WIDTH + 40  # graphviz pads a little around the notes
    if full.size()[0] > DEFAULT_MAX_WIDTH + 40:
        assert height > full.size()[1]  # wrapped onto more rows instead
    labels = {text for text, _, _ in texts(board.svg())}
    assert set(model.elements) <= labels
    narrow = model.board(max_width=300).size()[0]
    assert narrow <= width  # one column per band at worst
    with pytest.raises(InvalidFormat, match="max_width is at least 200"):
        model.board(max_width=50)


def test_board_arrow_across_bands_is_written_on_its_target() -> None:
    board = derive_model(coffee).board()
    lines = {text for text, _, _ in texts(board.svg())}
    # CustomerReceipts is fed by OrderPlaced, which is drawn rows above it: no arrow across the board
    assert "◂ from OrderPlaced" in lines
    assert "◂ from OrderPlaced" not in {t for t, _, _ in texts(board.full_size().svg())}


def test_board_fields_wrap_legend_and_no_class_variables() -> None:
    model = derive_model(coffee)
    assert model.elements["EnterShop"].fields == ("customer",)  # `emits` is a ClassVar, not a field
    svg = model.board().svg()
    lines = [text for text, _, _ in texts(svg)]
    assert not any("emits" in line for line in lines)
    assert all(len(line) <= 40 for line in lines if "," in line)  # long field lists wrap
    legend = " ".join(lines)
    for words in ("command:", "event:", "read model:", "automation:"):
        assert words in legend
    sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', svg)]
    assert min(sizes) >= 10  # points at 100%; DETAIL_SIZE is the smallest


def test_board_rich_display_fits_its_container_and_files(tmp_path: Path) -> None:
    model = derive_model(coffee)
    bundle = model._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
    page = bundle["text/html"]
    assert page.count("<svg") == 1 and "<?xml" not in page
    assert "max-width:100%;height:auto" in page
    svg_tag = page[page.index("<svg") : page.index(">", page.index("<svg"))]
    assert 'width="' not in svg_tag and "viewBox" in svg_tag  # sized by CSS, scaled by the viewBox
    assert 'download="board.svg"' in page and "data:image/svg+xml;base64," in page
    assert model.board()._repr_svg_() == bundle["image/svg+xml"]
    png = model.board().save(tmp_path / "b.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = model.board(title="Coffee!").save(tmp_path / "b.svg")
    assert "Coffee!" in {t for t, _, _ in texts(svg.read_text())}
    dot = model.board().save(tmp_path / "b.dot")
    assert "digraph" in dot.read_text()
    with pytest.raises(InvalidFormat, match=r"use \.svg, \.png, \.pdf or \.dot"):
        model.board().save(tmp_path / "b.gif")


def test_missing_dot_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `dot` anywhere
    board = derive_model(banking).board()
    assert "digraph" in board.source  # the DOT text needs no Graphviz
    with pytest.raises(GraphvizMissing, match="apt-get install graphviz") as raised:
        board.svg()
    assert raised.value.code == "EC010"
    bundle = board._repr_mimebundle_()
    assert "image/svg+xml" not in bundle and "apt-get install graphviz" in bundle["text/html"]


def test_cli_board(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "board.svg"
    assert cli_main(["board", "eventcore_lab.examples.coffee", "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "6 commands, 6 events, 3 read models, 1 automation, 4 stream categories" in said
    assert "CustomerReceipts" in {t for t, _, _ in texts(out.read_text())}
    assert derive_model(coffee).board().size()[0] <= DEFAULT_MAX_WIDTH + 40

    domain = tmp_path / "mydomain.py"
    domain.write_text("from eventcore_lab.examples.banking import Deposit, Withdraw\n")
    assert cli_main(["board", str(domain), "-o", str(tmp_path / "b.png")]) == 1  # imports only: nothing
    assert "defines no commands" in capsys.readouterr().err
    domain.write_text(
        "from eventcore_lab.examples.banking import Deposit, Withdraw\nCOMMANDS = (Deposit, Withdraw)\n"
    )
    assert cli_main(["board", str(domain), "-o", str(tmp_path / "b.svg")]) == 0
    assert "mydomain" in {t for t, _, _ in texts((tmp_path / "b.svg").read_text())}  # not a module alias
    assert cli_main(["board", str(domain), "-o", str(tmp_path / "b.png"), "--full-size"]) == 0
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    assert cli_main(["board", "no.such.module", "-o", str(out)]) == 1
    assert "cannot import module 'no.such.module'" in capsys.readouterr().err


def test_cli_board_needs_an_output_path_and_cli_has_a_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main(["board", "eventcore_lab.examples.coffee"])
    assert exited.value.code == 2 and "-o/--output" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        cli_main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("eventcore-lab ")
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    assert "``" not in capsys.readouterr().out  # plain text, no reStructuredText markup


def test_cli_output_into_a_closed_pipe_ends_quietly() -> None:
    """``eventcore-lab demo | head -1``: the reader has gone; no BrokenPipeError traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: the first line the demo prints meets a closed pipe
    try:
        demo = subprocess.run(
            [sys.executable, "-m", "eventcore_lab.cli", "demo", "--store", "memory"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    err = demo.stderr.decode()
    assert demo.returncode == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err


# -- timelines ------------------------------------------------------------------------------------------


def _history() -> tuple[MemoryStore, Any]:
    store = MemoryStore()
    executor = Executor(store)

    def run(command: Any, **kw: Any) -> Any:
        return executor.execute(command, metadata=Metadata(custom={"command": type(command).__name__}, **kw))

    acc = banking.account_stream
    run(banking.OpenAccount(acc(1), "ann", 100))
    run(banking.OpenAccount(acc(2), "bob"))
    transfer = run(banking.TransferMoney(acc(1), acc(2), 30))
    cause = transfer.events_written[0]
    run(
        banking.Deposit(acc(2), 5, "fee refund"),
        correlation_id=cause.metadata.correlation_id,
        causation_id=str(cause.event_id),
    )
    store.append([EventToWrite("audit-1", banking.MoneyDeposited(amount=1))])
    return store, transfer


def test_timeline_rows_events_commands_and_causation() -> None:
    store, _ = _history()
    line = timeline(store, title="bank")
    assert line.streams == ["account-1", "account-2", "audit-1"]
    commits = line.commits()
    assert [c.label for c in commits] == ["OpenAccount", "OpenAccount", "TransferMoney", "Deposit", "commit"]
    assert [len(c.events) for c in commits] == [1, 1, 2, 1, 1]  # the transfer wrote both accounts at once
    root = ET.fromstring(line.svg())
    assert len(list(root.iter(f"{SVG}circle"))) == 6  # one dot per event
    assert len(list(root.iter(f"{SVG}rect"))) == 1 + 5  # background + one marker per commit
    dashed = [e for e in root.iter(f"{SVG}line") if e.get("stroke-dasharray")]
    assert len(dashed) == 2  # causation arrow (transfer -> deposit) and the same-correlation link
    labels = [t for t, _, _ in texts(line.svg())]
    assert {"account-1", "account-2", "audit-1", "TransferMoney", "MoneyTransferred", "bank"} <= set(labels)
    frame = line.to_frame()
    assert list(frame["position"]) == [1, 2, 3, 4, 5, 6]
    assert frame["causation_id"].notna().sum() == 1


def test_timeline_selection_by_streams_and_window() -> None:
    store, transfer = _history()
    assert timeline(store, streams="account-2").streams == ["account-2"]
    assert timeline(store, streams=["audit-*", "account-1"]).streams == ["account-1", "audit-1"]
    window = timeline(store, start=3, end=4)
    assert [e.position for e in window.events] == [3, 4]
    when = transfer.events_written[0].recorded_at
    by_time = timeline(store, start=when, end=when + timedelta(microseconds=0))
    assert {e.event_type for e in by_time.events} == {"MoneyTransferred"}
    assert timeline(store, streams="nothing-*").events == []
    with pytest.raises(InvalidFormat, match="empty selection"):
        timeline(store, streams=[])
    with pytest.raises(InvalidFormat, match="position \\(int\\) or a datetime"):
        timeline(store, start="yesterday")  # type: ignore[arg-type]
    with pytest.raises(InvalidFormat, match="axis is 'position' or 'time'"):
        timeline(store, axis="space")


def test_timeline_time_axis_marker_and_files(tmp_path: Path) -> None:
    store, _ = _history()
    by_time = timeline(store, axis="time")
    xs = [float(c.get("cx", 0)) for c in ET.fromstring(by_time.svg()).iter(f"{SVG}circle")]
    assert xs == sorted(xs)
    marked = timeline(store).with_marker(3)
    assert "position 3" in {t for t, _, _ in texts(marked.svg())}
    assert marked._repr_svg_() == marked.svg()
    assert marked.save(tmp_path / "t.svg").read_text().startswith("<svg")
    assert marked.save(tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InvalidFormat, match=r"use \.svg, \.png or \.pdf"):
        marked.save(tmp_path / "t.txt")
    assert "0 events" in repr(timeline([]))
    ET.fromstring(timeline([]).svg())  # an empty timeline is still a valid picture


def test_stagger_puts_overlapping_labels_on_other_levels() -> None:
    assert stagger([(0, 50), (40, 90), (100, 150), (45, 60)]) == [0, 1, 0, 2]
    assert stagger([(0, 10), (20, 30)]) == [0, 0]
    assert stagger([]) == []


def test_timeline_labels_do_not_overlap_and_read_at_100_percent() -> None:
    store = MemoryStore()
    executor = Executor(store)
    for i in range(3):  # long command names, one step apart: on one line they would run together
        executor.execute(
            banking.OpenAccount(f"account-{i}", f"owner-{i}", 1),
            metadata=Metadata(custom={"command": "OpenAccountWithAVeryLongName"}),
        )
    for i in range(9):
        executor.execute(
            banking.Deposit(f"account-{i % 3}", i + 1),
            metadata=Metadata(custom={"command": "DepositSomeMoney"}),
        )
    _assert_labels_read_and_do_not_overlap(timeline(store).svg())


def _assert_labels_read_and_do_not_overlap(svg: str) -> None:
    """Every text is 11 px or more at 100%, and no two centred labels on one line overlap."""
    root = ET.fromstring(svg)
    boxes: list[tuple[float, float, float]] = []  # (y, left, right) of centred labels
    for t in root.iter(f"{SVG}text"):
        size = float(t.get("font-size", 0))
        assert size >= 11  # px at 100%
        if t.get("text-anchor") == "middle":
            half = len(_own_text(t)) * size * 0.5 / 2  # a tight estimate for sans-serif
            x = float(t.get("x", 0))
            boxes.append((float(t.get("y", 0)), x - half, x + half))
    for i, (y, left, right) in enumerate(boxes):
        for y2, left2, right2 in boxes[i + 1 :]:
            if abs(y - y2) < 1:
                assert right <= left2 or right2 <= left, f"labels overlap at y={y}"


def _long_history(commands: int) -> MemoryStore:
    """Deposits to three accounts, each labelled with its command: ``commands`` + 3 events."""
    store = MemoryStore()
    executor = Executor(store)
    for i in range(3):
        executor.execute(banking.OpenAccount(f"account-{i}", f"owner-{i}", 1))
    for i in range(commands):
        executor.execute(
            banking.Deposit(f"account-{i % 3}", i + 1), metadata=Metadata(custom={"command": "Deposit"})
        )
    return store


def test_a_long_timeline_is_drawn_closer_together_to_fit_and_still_reads() -> None:
    """31 events (tutorial 5.3's chain is as long) at the usual spacing would be 1630 px wide and
    shrunk to 8 px text in a notebook; squeezed to the output's width they show at 100%."""
    store = _long_history(28)
    wide = timeline(store, max_width=None)
    assert wide.size()[0] > 1600
    line = timeline(store)
    assert len(line.events) == 31 and line.size()[0] <= FIT_WIDTH
    assert line.step < 46
    xs = [float(c.get("cx", 0)) for c in ET.fromstring(line.svg()).iter(f"{SVG}circle")]
    assert min(b - a for a, b in pairwise(xs)) == pytest.approx(line.step, abs=0.1)
    _assert_labels_read_and_do_not_overlap(line.svg())
    # past the closest spacing (a dot and a gap) the picture grows instead
    longest = timeline(_long_history(80))
    assert longest.step == 18 and longest.size()[0] > FIT_WIDTH
    _assert_labels_read_and_do_not_overlap(longest.svg())


def test_event_labels_drop_the_namespace_and_the_hover_keeps_it() -> None:
    store = MemoryStore()
    store.append([EventToWrite("audit-1", banking.MoneyDeposited(amount=1))])
    event = store.read_all()[0]
    named = type(event)(
        **{**{f: getattr(event, f) for f in event.__struct_fields__}, "event_type": "bank.Moved"}
    )
    svg = timeline([named]).svg()
    assert "Moved" in [t for t, _, _ in texts(svg)]
    assert "bank.Moved on audit-1" in "".join(ET.fromstring(svg).itertext())


def test_timeline_axis_tooltips_and_inline_html() -> None:
    store, _ = _history()
    line = timeline(store)
    labels = [t for t, _, _ in texts(line.svg())]
    assert "position in the log" in labels and {"1", "2", "6"} <= set(labels)
    assert any(
        label.startswith("recorded at")
        for label in (t for t, _, _ in texts(timeline(store, axis="time").svg()))
    )
    root = ET.fromstring(line.svg())
    tips = ["".join(c.itertext()) for c in root.iter(f"{SVG}title")]
    assert any("MoneyTransferred on account-1 (version 2, position 3" in tip for tip in tips)
    assert any(tip.startswith("TransferMoney: wrote MoneyTransferred to account-1") for tip in tips)
    page = line._repr_mimebundle_()["text/html"]
    assert "max-width:100%" in page and "<title>" in page  # scaled to the output, hover kept


def test_slider_track_lines_up_with_the_timeline_markers() -> None:
    store, _ = _history()
    slider = TimelineSlider(store, lambda: _Count())
    width, _ = slider.timeline.size()
    left = float(slider.slider.layout.margin.split()[-1].rstrip("%")) / 100 * width
    span = float(slider.slider.layout.width.rstrip("%")) / 100 * width
    assert left + 8 == pytest.approx(slider.timeline.marker_x(0), abs=0.1)
    assert left + span - 8 == pytest.approx(slider.timeline.marker_x(store.head()), abs=0.1)
    assert slider.layout.max_width == f"{width:.0f}px" and "width:100%" in slider.picture.value
    slider.slider.value = 2
    assert "position 2" in slider.picture.value and "2 events" in slider.state.value


def test_slider_follows_a_timeline_drawn_closer_together() -> None:
    """The slider's track maps position 0 and the head onto the markers of the squeezed layout, and the
    marker of every position in between sits half a step after its event."""
    store = _long_history(28)
    slider = TimelineSlider(store, lambda: _Count())
    line = slider.timeline
    width, _ = line.size()
    assert width <= FIT_WIDTH and line.step < 46
    left = float(slider.slider.layout.margin.split()[-1].rstrip("%")) / 100 * width
    span = float(slider.slider.layout.width.rstrip("%")) / 100 * width
    assert left + 8 == pytest.approx(line.marker_x(0), abs=0.1)
    assert left + span - 8 == pytest.approx(line.marker_x(store.head()), abs=0.1)
    dots = sorted(float(c.get("cx", 0)) for c in ET.fromstring(line.svg()).iter(f"{SVG}circle"))
    assert len(dots) == store.head() == 31
    for position, dot in enumerate(dots, start=1):
        track = left + 8 + (span - 16) * position / store.head()  # where the handle of ``position`` is
        assert track == pytest.approx(line.marker_x(position), abs=0.1)
        assert line.marker_x(position) == pytest.approx(dot + line.step / 2, abs=0.1)
    slider.slider.value = 17
    assert "position 17" in slider.picture.value and "17 events" in slider.state.value


class _Count:
    def __init__(self) -> None:
        self.seen = 0

    def apply(self, event: Any) -> None:
        self.seen += 1

    def _repr_html_(self) -> str:
        return f"{self.seen} events"


def test_a_history_past_the_detail_limit_is_drawn_as_a_density_overview_the_slider_follows() -> None:
    """Past ``detail_limit`` events the picture is one shaded strip per stream at the fitted width
    (not a dot per event); bins count the events, x is affine in position, and the slider's track
    still spans the markers of position 0 and the head."""
    store = _long_history(60)  # 63 events on 3 streams: 30 more than the limit below
    detailed = timeline(store, detail_limit=None)
    line = timeline(store, detail_limit=33)
    assert detailed.overview is None and line.overview is not None
    assert timeline(store, detail_limit=63).overview is None  # at the limit: still every event
    assert line.svg() != detailed.svg() and line.size()[0] <= FIT_WIDTH
    root = ET.fromstring(line.svg())
    assert not list(root.iter(f"{SVG}circle"))  # no dot per event
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("fill-opacity")]
    tips = ["".join(r.itertext()) for r in bars]
    per_row = {name: 0 for name in ("all streams", "account-0", "account-1", "account-2")}
    for tip in tips:
        name, rest = tip.split(": ", 1)
        per_row[name] += int(rest.split(" events")[0])
    assert per_row == {"all streams": 63, "account-0": 21, "account-1": 21, "account-2": 21}
    labels = [t for t, _, _ in texts(line.svg())]
    assert "position in the log" in labels and any("63 events on 3 streams" in t for t in labels)
    head = store.head()
    xs = [line.marker_x(p) for p in range(head + 1)]
    steps = {round(b - a, 6) for a, b in pairwise(xs)}
    assert len(steps) == 1 and steps.pop() > 0  # affine in position
    marked = line.with_marker(40).svg()
    assert "position 40" in marked and marked.startswith(line.svg().removesuffix("</svg>"))


def test_the_slider_over_a_long_history_shows_the_overview_and_lines_up() -> None:
    store = _long_history(2_100)  # past the default limit of 2,000 events
    slider = TimelineSlider(store, lambda: _Count())
    line = slider.timeline
    assert line.overview is not None
    width, _ = line.size()
    left = float(slider.slider.layout.margin.split()[-1].rstrip("%")) / 100 * width
    span = float(slider.slider.layout.width.rstrip("%")) / 100 * width
    assert left + 8 == pytest.approx(line.marker_x(0), abs=0.1)
    assert left + span - 8 == pytest.approx(line.marker_x(store.head()), abs=0.1)
    for position in (1, 700, store.head()):
        track = left + 8 + (span - 16) * position / store.head()
        assert track == pytest.approx(line.marker_x(position), abs=0.1)
    slider.slider.value = 700
    assert "position 700" in slider.picture.value and "700 events" in slider.state.value
    assert len(slider.picture.value) < 300_000
