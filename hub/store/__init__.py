"""SQLAlchemy models, sessions and migrations."""
from .clock import Clock, FakeClock, utcnow
from .db import Database
from .models import AuditEvent, Base, Connection, Installation, InstallationUser, Job, ProcessHeartbeat, Secret

__all__ = ["AuditEvent", "Connection", "Installation", "InstallationUser", "Base", "Clock", "Database", "FakeClock", "Job", "ProcessHeartbeat", "Secret", "utcnow"]
