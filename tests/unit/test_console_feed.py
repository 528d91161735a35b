"""The console's call feed: verified call steps fan out to every open screen-pop stream."""

from __future__ import annotations

import asyncio
import threading

from commands import messages as m
from touchstream.console.feed import QUEUE_MAX, CallFeed


def step(call_id: str, direction: str = "inbound") -> m.RecordCallStep:
    return m.RecordCallStep(call_id=call_id, step="ringing", direction=direction,  # type: ignore[arg-type]
                            from_number="+442079460018", to_number="+442079460000")


def test_a_step_published_from_any_thread_reaches_every_subscriber() -> None:
    feed = CallFeed()

    async def scenario() -> list[str | None]:
        first, second = feed.subscribe(), feed.subscribe()
        thread = threading.Thread(target=feed.publish, args=(step("CA1"),))
        thread.start()
        thread.join()
        got = [await first.next(1), await second.next(1)]
        first.close()
        feed.publish(step("CA2"))
        assert await second.next(1) is not None and feed.listeners == 1
        second.close()
        return [g.call_id if g else None for g in got]

    assert asyncio.run(scenario()) == ["CA1", "CA1"]
    assert feed.listeners == 0


def test_the_callers_number_is_the_far_end_of_the_call() -> None:
    async def scenario() -> tuple[str | None, str | None]:
        feed = CallFeed()
        sub = feed.subscribe()
        feed.publish(step("CA1"))
        feed.publish(step("CA2", "outbound"))
        inbound, outbound = await sub.next(1), await sub.next(1)
        assert inbound is not None and outbound is not None
        return inbound.number, outbound.number

    assert asyncio.run(scenario()) == ("+442079460018", "+442079460000")


def test_a_subscriber_that_falls_behind_loses_the_oldest_steps_only() -> None:
    async def scenario() -> tuple[str | None, int]:
        feed = CallFeed()
        sub = feed.subscribe()
        for i in range(QUEUE_MAX + 5):
            feed.publish(step(f"CA{i}"))
        await asyncio.sleep(0)  # let the loop run the deliveries
        first = await sub.next(1)
        return (first.call_id if first else None), sub.queue.qsize()

    assert asyncio.run(scenario()) == ("CA5", QUEUE_MAX - 1)


def test_nothing_waiting_times_out_quietly() -> None:
    async def scenario() -> object:
        return await CallFeed().subscribe().next(0.01)

    assert asyncio.run(scenario()) is None


def test_a_step_published_here_and_read_back_from_the_log_is_sent_once() -> None:
    from touchstream.console.feed import RingingCall

    async def scenario() -> list[tuple[str, str]]:
        feed = CallFeed()
        sub = feed.subscribe()
        feed.publish(step("CA1"))  # the webhook of this process
        feed.announce(RingingCall("CA1", "ringing", "+442079460018", "inbound", None))  # the log
        feed.announce(RingingCall("CA1", "answered", None, "inbound", None))  # a later step
        feed.announce(RingingCall("CA2", "ringing", "+442079460019", "inbound", None))  # elsewhere
        got = []
        while (call := await sub.next(0.05)) is not None:
            got.append((call.call_id, call.step))
        return got

    assert asyncio.run(scenario()) == [("CA1", "ringing"), ("CA1", "answered"),
                                       ("CA2", "ringing")]
