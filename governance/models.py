from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils import timezone

from .permissions import GenericRestrictedQuerySet, RestrictedQuerySet


class BaseModel(models.Model):
    """Every governed model: timestamps, an owner, a description, a change log and
    querysets restricted by object permissions."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The person accountable for this object.",
    )
    description = models.TextField(blank=True)

    objects = RestrictedQuerySet.as_manager()

    # Fields that change without anyone editing the object stay out of the change log.
    changelog_exclude: tuple[str, ...] = ()
    # The foreign key whose object's permissions cover this one (a table's source, say).
    permission_parent: str | None = None
    # Shared vocabulary (tags, classifier rules) that every signed-in user may read.
    readable_by_all = False

    class Meta:
        abstract = True

    def secret_target(self):
        """What decides where this object's encrypted secrets are sent (a host, say), or None
        when nothing does. A secret typed for one target is never reused for another: restoring
        a version whose target differs drops the secrets instead of keeping them."""
        return None

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        from .changelog import loaded

        loaded(instance, field_names, values)
        return instance


class ChangeLogEntry(models.Model):
    """Who changed what, when, under which request, with the state before and after."""

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"

    time = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_name = models.CharField(max_length=150, blank=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.PositiveBigIntegerField()
    object_repr = models.CharField(max_length=200)
    version = models.PositiveIntegerField()
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    changed = models.JSONField(default=list, blank=True)

    objects = GenericRestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-time", "-id"]
        verbose_name_plural = "change log entries"
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "version"], name="changelog_one_version"
            )
        ]

    def __str__(self):
        return f"{self.action} {self.object_repr} v{self.version}"


class AppendOnlyQuerySet(GenericRestrictedQuerySet):
    def update(self, **kwargs):
        raise PermissionDenied("The access log is append-only.")

    def delete(self):
        raise PermissionDenied("The access log is append-only.")


class AccessLogEntry(models.Model):
    """Append-only record of logins, denials, grants, exports and connection tests."""

    class Action(models.TextChoices):
        LOGIN = "login"
        LOGIN_FAILED = "login_failed"
        LOGOUT = "logout"
        PERMISSION_DENIED = "permission_denied"
        GRANT = "grant"
        REVOKE = "revoke"
        EXPORT = "export"
        CONNECTION_TEST = "connection_test"
        TOKEN_CREATED = "token_created"  # noqa: S105  (an action name)
        TOKEN_REVOKED = "token_revoked"  # noqa: S105
        MFA_ENROLLED = "mfa_enrolled"
        MFA_FAILED = "mfa_failed"
        MFA_RESET = "mfa_reset"

    time = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices, db_index=True)
    content_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-time", "-id"]
        verbose_name_plural = "access log entries"
        indexes = [models.Index(fields=["content_type", "object_id", "time"])]

    def __str__(self):
        return f"{self.action} by {self.user_name or 'anonymous'}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionDenied("The access log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionDenied("The access log is append-only.")


class JobRunQuerySet(GenericRestrictedQuerySet):
    type_field, id_field = "target_type", "target_id"

    def also_visible(self, user):
        return models.Q(user=user)  # whoever started a job may follow it

    def stalled(self, before):
        """Running runs whose last heartbeat (or start, before any) is older than `before`."""
        return self.filter(status=JobRun.Status.RUNNING).filter(
            models.Q(heartbeat_at__lt=before)
            | models.Q(heartbeat_at__isnull=True, started_at__lt=before)
        )


class JobRun(models.Model):
    """One execution of a background task: saved before it is enqueued, updated as it runs."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    name = models.CharField(max_length=100, db_index=True)
    task = models.CharField(max_length=200)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0)
    progress_message = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the worker running it."
    )
    retried_as = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The run that took over after this one's worker stopped responding.",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_id = models.PositiveBigIntegerField(null=True, blank=True)
    target = GenericForeignKey("target_type", "target_id")
    target_repr = models.CharField(max_length=200, blank=True)
    arguments = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    objects = JobRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self):
        return f"{self.name} #{self.pk} ({self.status})"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    def set_progress(self, percent, message=""):
        self.progress = max(0, min(100, int(percent)))
        self.progress_message = message[:300]
        # The row is written anyway; the heartbeat rides along (see governance.jobs).
        JobRun.objects.filter(pk=self.pk).update(
            progress=self.progress,
            progress_message=self.progress_message,
            heartbeat_at=timezone.now(),
        )
        from .jobs import progress_listener

        listener = progress_listener.get()
        if listener is not None:
            listener(self.progress, self.progress_message)


class Event(models.Model):
    """Something that happened and that people may want to hear about (a schema change, a
    failed scan...). Written in the same transaction as the change itself; the notification
    rules read them from here."""

    kind = models.CharField(max_length=100, db_index=True)
    time = models.DateTimeField(default=timezone.now, db_index=True)
    content_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    objects = GenericRestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-time", "-id"]

    def __str__(self):
        return f"{self.kind}: {self.object_repr}"


class ApiTokenQuerySet(models.QuerySet):
    def restrict(self, user, action="view"):
        """Everyone sees and revokes their own tokens; the global permission covers the
        tokens of users who are not superusers; a superuser sees all."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        own = models.Q(user=user)
        if user.has_perm(f"governance.{action}_apitoken"):
            return self.filter(own | models.Q(user__is_superuser=False))
        return self.filter(own)


class ApiToken(models.Model):
    """A key for the API. Only its SHA-256 digest is stored; the key is shown once, when
    it is made, and its first characters (the prefix) identify it afterwards."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    # What anyone may see of a token: the API, the admin and the access log show these.
    SHOWN_FIELDS = ("name", "prefix", "user", "created_at", "expires_at", "last_used_at")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self):
        return f"{self.prefix}… ({self.name})"


class LoginFailureCount(models.Model):
    """Failed sign-ins under one key (a username and address pair, or an address) in the
    window ending at window_ends: the lockout's counters when the cache is not shared."""

    key = models.CharField(max_length=100, unique=True)
    count = models.PositiveIntegerField(default=0)
    window_ends = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.key}: {self.count}"


from .bulk.models import ImportErrorPage  # noqa: E402, F401  (the bulk import's error pages)
