"""How a job handler tells the queue what happened, besides returning normally (= done)."""
from ..errors import Defer, Fatal, NeedsReauth, Retriable

__all__ = ["Defer", "Fatal", "NeedsReauth", "Retriable"]
