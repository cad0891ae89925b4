"""Handler for bench/queue.py: does nothing, so the figures measure the queue itself."""
from hub.jobs import handler


@handler("bench.noop")
def noop(ctx) -> None:
    return None
