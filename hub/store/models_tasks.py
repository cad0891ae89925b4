"""Tables of task templates and sets, post-sale sets, next-task suggestions, task types, statuses
and sharing, and the tasks the hub made from templates (hub/tasks). Imported at the end of models.py."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .clock import utcnow
from .models import Base, BigId
class TaskType(Base):
    """A hub-level task type (Email, Offer, Project, Meeting, Online meeting ... per installation);
    `sharing` None: the installation's default."""

    __tablename__ = "task_types"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    name: Mapped[str] = mapped_column(String(80))
    position: Mapped[int] = mapped_column(Integer, default=0)
    sharing: Mapped[str | None] = mapped_column(String(20), nullable=True)

    __table_args__ = (Index("ux_task_types_name", "installation_id", "name", unique=True),)


class TaskStatusOption(Base):
    """A task status the account uses (switched on with TaskSettings.statuses_enabled)."""

    __tablename__ = "task_status_options"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    name: Mapped[str] = mapped_column(String(80))
    position: Mapped[int] = mapped_column(Integer, default=0)
    closes: Mapped[bool] = mapped_column(default=False)      # a task in this status counts as completed

    __table_args__ = (Index("ux_task_status_options_name", "installation_id", "name", unique=True),)


class TaskTemplateSet(Base):
    """A named set of task templates, applied together (by a rule step, a post-sale set, by hand)."""

    __tablename__ = "task_template_sets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_task_template_sets", "installation_id", "id"),)


class TaskTemplate(Base):
    """One task of a set: its title/description templates, type, responsible, the delay that becomes
    its deadline at the moment of creation, and the target step kind (+ settings) that makes it."""

    __tablename__ = "task_templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    set_id: Mapped[int] = mapped_column(BigId)
    position: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    type_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    responsible: Mapped[str] = mapped_column(String(100), default="owner")   # owner | a target user id
    delay_days: Mapped[int] = mapped_column(Integer, default=0)
    day_kind: Mapped[str] = mapped_column(String(10), default="working")    # working | calendar
    time_of_day: Mapped[str] = mapped_column(String(5), default="09:00")    # HH:MM in the account's zone
    kind: Mapped[str] = mapped_column(String(80))                           # a connector step kind making tasks
    connection_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_task_templates_set", "set_id", "position"),)


class PostSaleSet(Base):
    """Per sales process (pipeline): the template set fired when a deal is won, or lost."""

    __tablename__ = "post_sale_sets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    pipeline_id: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(10))                        # won | lost
    set_id: Mapped[int] = mapped_column(BigId)

    __table_args__ = (Index("ux_post_sale_sets", "installation_id", "pipeline_id", "outcome", unique=True),)


class NextTaskRule(Base):
    """When a task of type `from_type_id` is completed, suggest (or create at once) the task of
    `template_id` for the same record."""

    __tablename__ = "next_task_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    from_type_id: Mapped[int] = mapped_column(BigId)
    template_id: Mapped[int] = mapped_column(BigId)
    mode: Mapped[str] = mapped_column(String(10), default="suggest")       # suggest | create

    __table_args__ = (Index("ux_next_task_rules", "installation_id", "from_type_id", unique=True),)


class TaskSuggestion(Base):
    """A next task suggested to the person who completed a task; accepted once (the e-mail's signed
    link or the hub's list), dismissed, or expired. `effect_key`: one suggestion per completion."""

    __tablename__ = "task_suggestions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    effect_key: Mapped[str] = mapped_column(String(200))
    template_id: Mapped[int] = mapped_column(BigId)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(100))
    completed_task: Mapped[str] = mapped_column(String(300), default="")   # what was completed, in words
    to_email: Mapped[str] = mapped_column(String(300), default="")
    to_user_id: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(12), default="open")       # open accepted dismissed
    nonce: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    task_id: Mapped[int | None] = mapped_column(BigId, nullable=True)      # the HubTask it became

    __table_args__ = (Index("ux_task_suggestions_effect", "installation_id", "effect_key", unique=True),
                      Index("ix_task_suggestions_to", "installation_id", "status", "to_email"))


class HubTask(Base):
    """A task the hub made from a template (by a rule, a post-sale set, by hand, an accepted
    suggestion), in any target: what the team calendar shows and the sharing modes guard."""

    __tablename__ = "hub_tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigId)
    effect_key: Mapped[str] = mapped_column(String(300))
    origin: Mapped[str] = mapped_column(String(20))            # rule | manual | suggestion
    run_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    template_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(100))
    connector: Mapped[str] = mapped_column(String(40))
    connection_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    kind: Mapped[str] = mapped_column(String(80), default="")
    external_id: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(500), default="")
    title: Mapped[str] = mapped_column(String(1024), default="")
    task_type: Mapped[str] = mapped_column(String(80), default="")
    sharing: Mapped[str | None] = mapped_column(String(20), nullable=True)   # None: the type's or the default
    owner_id: Mapped[str] = mapped_column(String(100), default="")         # the responsible's target user id
    owner_name: Mapped[str] = mapped_column(String(300), default="")
    owner_email: Mapped[str] = mapped_column(String(300), default="")
    due_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)   # naive UTC
    status: Mapped[str] = mapped_column(String(20), default="open")        # open | completed
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ux_hub_tasks_effect", "installation_id", "effect_key", unique=True),
                      Index("ix_hub_tasks_due", "installation_id", "due_at"),
                      Index("ix_hub_tasks_external", "installation_id", "connector", "external_id"))
