"""Durable job queue: enqueue in the caller's transaction, leased claims, retries, dead letter."""
from .errors import Defer, Fatal, Retriable
from .queue import DEAD, DONE, EVERY_INSTALLATION, QUEUED, RUNNING, ClaimedJob, JobQueue, backoff_delay
from .registry import JobContext, handler
from .worker import Worker

__all__ = ["ClaimedJob", "DEAD", "DONE", "Defer", "EVERY_INSTALLATION", "Fatal", "JobContext", "JobQueue", "QUEUED", "RUNNING",
           "Retriable", "Worker", "backoff_delay", "handler"]
