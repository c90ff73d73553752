"""The errors of refused imports too many for one answer, kept in pages for whoever ran the
import: the answer (or the job's error) carries the first page and where the rest are."""

from datetime import timedelta

from django.conf import settings
from django.db import models

KEEP_FOR = timedelta(days=7)


class ImportErrorPageQuerySet(models.QuerySet):
    def restrict(self, user, action="view"):
        """Whoever ran the import reads its errors, and superusers; nobody changes them."""
        if user is None or not user.is_authenticated or not user.is_active or action != "view":
            return self.none()
        return self if user.is_superuser else self.filter(user=user)


class ImportErrorPage(models.Model):
    key = models.UUIDField()  # one refused import (indexed by the unique constraint)
    number = models.PositiveIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    error_count = models.PositiveIntegerField()  # of the whole import
    page_count = models.PositiveIntegerField()
    errors = models.JSONField()

    objects = ImportErrorPageQuerySet.as_manager()

    class Meta:
        app_label = "governance"
        ordering = ["key", "number"]
        constraints = [models.UniqueConstraint(fields=["key", "number"], name="one_page_number")]

    def __str__(self):
        return f"import {self.key} errors, page {self.number} of {self.page_count}"
