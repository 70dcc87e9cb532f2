"""Conversations with the assistant: their messages, and each answer as it was streamed.

A conversation belongs to one user in one organisation (its tools act as that user, in
that organisation's projects). Each user message starts a `Turn`: the answer, generated
by a task of its own; everything the turn streams is kept as numbered `TurnEvent`s, so a
client that lost its connection asks for what followed the last id it saw.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"
    TOOL = "tool", "Tool"


class TurnStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Conversation(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="conversations"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "-updated_at"], name="conversation_user_updated")]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    seq = models.PositiveIntegerField()  # its place in the conversation
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    # An assistant message's calls: [{"id", "name", "arguments"}] (arguments as JSON text).
    tool_calls = models.JSONField(default=list, blank=True)
    # A tool message: which call it answers, and that tool's name.
    tool_call_id = models.CharField(max_length=200, blank=True)
    tool_name = models.CharField(max_length=100, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq_unique")
        ]
        ordering = ["conversation", "seq"]

    def __str__(self) -> str:
        return f"{self.role} #{self.seq}"


class Turn(models.Model):
    """One answer to a user message, while and after it is generated."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    question = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=TurnStatus.choices, default=TurnStatus.RUNNING)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Refreshed while a client follows the stream; an answer nobody follows stops.
    followed_at = models.DateTimeField(default=timezone.now)
    # Refreshed by the process generating it: a stale one is a lost answer.
    heartbeat_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["conversation", "status"], name="turn_conversation_status")]

    def __str__(self) -> str:
        return f"Answer {self.pk} ({self.status})"


class TurnEvent(models.Model):
    """One event of a turn's stream; `seq` is its SSE id."""

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=32)
    data = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["turn", "seq"], name="turn_event_seq_unique")
        ]
        ordering = ["turn", "seq"]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq}"
