"""SQLAlchemy models, sessions and migrations."""
from .clock import Clock, FakeClock, utcnow
from .db import Database
from .models import (AuditEvent, Base, Bookmark, Connection, HubEvent, InboxEvent, Installation, InstallationUser, Job,
                     ObjectState, ProcessHeartbeat, RegisteredWebhook, RunLog, Secret, SignInLink, WebSession)

__all__ = ["Bookmark", "HubEvent", "InboxEvent", "ObjectState", "RegisteredWebhook", "RunLog", "AuditEvent", "Connection", "Installation", "InstallationUser", "Base", "Clock", "Database", "FakeClock", "Job", "ProcessHeartbeat", "Secret", "SignInLink", "WebSession", "utcnow"]
