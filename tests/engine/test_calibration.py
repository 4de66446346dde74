"""Start-up pricing of a realtime final for admission (issue 12, Overload), without the model.

`calibrate` times one silent 30 s-window decode (it also warms the model up); with short final
windows a final costs SHORT_FINAL_SHARE of that, so admission does not price streams at a decode
their finals never make. `Engine.time_finals` passes the configured `final_window`. A fake clock
that only the fake decode advances: no wall time involved.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from voxscope.engine import load
from voxscope.engine.hub import Engine
from voxscope.engine.load import SHORT_FINAL_SHARE, LoadMeter, calibrate

DECODE_S = 2.0


class Clock:
    now = 100.0

    def monotonic(self) -> float:
        return self.now


class SlowBackend:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.windows: list[bool] = []

    def decode_batch(self, items):
        self.windows += [opts.full_window for _, opts in items]
        self.clock.now += DECODE_S
        return [None for _ in items]


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(load, "time", c)
    return c


def test_full_final_windows_are_priced_at_the_30s_decode(clock):
    backend, meter = SlowBackend(clock), LoadMeter()
    assert calibrate(backend, meter, full_window=True) == DECODE_S == meter.final_decode_s
    assert backend.windows == [True]


def test_short_final_windows_are_priced_at_their_share_of_it(clock):
    backend, meter = SlowBackend(clock), LoadMeter()
    price = calibrate(backend, meter, full_window=False)
    assert price == pytest.approx(SHORT_FINAL_SHARE * DECODE_S) and meter.final_decode_s == price
    assert backend.windows == [True]  # the same warm-up decode


def test_the_engine_prices_finals_by_the_configured_window(clock):
    prices = {}
    for window in ("full", "short"):
        meter = LoadMeter()
        engine = SimpleNamespace(
            schedulers={"m": SimpleNamespace(backend=SlowBackend(clock), load=meter)},
            settings=SimpleNamespace(final_window=window))
        Engine.time_finals(engine)  # type: ignore[arg-type]
        prices[window] = meter.final_decode_s
    assert prices == {"full": DECODE_S, "short": pytest.approx(SHORT_FINAL_SHARE * DECODE_S)}
