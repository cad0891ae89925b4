"""SQLAlchemy models, sessions and migrations."""
from .clock import Clock, FakeClock, utcnow
from .db import Database
from .models import Base, Job, ProcessHeartbeat, Secret

__all__ = ["Base", "Clock", "Database", "FakeClock", "Job", "ProcessHeartbeat", "Secret", "utcnow"]
