from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from guardian.admin import GuardedModelAdmin

from .models import AccessLogEntry, ChangeLogEntry, JobRun
from .permissions import can, perm_name


class GovernedAdmin(GuardedModelAdmin):
    """Admin screens go through the same object permissions as the API: the changelist
    shows what the user may view, the change page opens only with a grant."""

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, "view")

    def _allowed(self, request, action, obj):
        if obj is not None:
            return can(request.user, action, obj)
        if request.user.has_perm(perm_name(self.model, action)):
            return True
        # No global permission: the list is still open to someone with object grants.
        return self.model.objects.restrict(request.user, action).exists()

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, "view", obj) or self._allowed(request, "change", obj)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, "delete", obj)

    def has_add_permission(self, request):
        return request.user.has_perm(perm_name(self.model, "add"))

    def may_manage_grants(self, request):
        """Granting is for the Admin role: an object grant must not let its holder widen it."""
        return request.user.is_superuser or request.user.has_perm(perm_name(self.model, "change"))

    def obj_perms_manage_view(self, request, object_pk):
        if not self.may_manage_grants(request):
            raise PermissionDenied
        return super().obj_perms_manage_view(request, object_pk)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        if not self.may_manage_grants(request):
            raise PermissionDenied
        return super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        if not self.may_manage_grants(request):
            raise PermissionDenied
        return super().obj_perms_manage_group_view(request, object_pk, group_id)

    def history_view(self, request, object_id, extra_context=None):
        """The object's history is its change log."""
        obj = self.get_object(request, object_id)
        if obj is None or not self.has_view_permission(request, obj):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        content_type = ContentType.objects.get_for_model(self.model)
        url = reverse("admin:governance_changelogentry_changelist")
        return redirect(f"{url}?content_type__id__exact={content_type.pk}&object_id={obj.pk}")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Logs: nobody edits them; each user sees the rows about objects they may view."""

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, "view")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ChangeLogEntry)
class ChangeLogEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "time",
        "action",
        "content_type",
        "object_repr",
        "version",
        "user_name",
        "changed_fields",
        "request_id",
    ]
    list_filter = ["action", "content_type"]
    search_fields = ["object_repr", "user_name", "request_id"]
    date_hierarchy = "time"

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("content_type")
        object_id = request.GET.get("object_id")
        return (
            queryset.filter(object_id=object_id) if object_id and object_id.isdigit() else queryset
        )

    def lookup_allowed(self, lookup, value, request=None):
        return lookup == "object_id" or super().lookup_allowed(lookup, value, request)

    @admin.display(description="changed")
    def changed_fields(self, entry):
        return ", ".join(entry.changed)


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(ReadOnlyAdmin):
    list_display = ["time", "action", "user_name", "object_repr", "ip_address", "request_id"]
    list_filter = ["action", "content_type"]
    search_fields = ["user_name", "object_repr", "request_id"]
    date_hierarchy = "time"


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "name",
        "status",
        "progress_bar",
        "attempts",
        "target_repr",
        "user",
        "created_at",
        "duration",
    ]
    list_filter = ["status", "name"]
    search_fields = ["name", "target_repr"]
    readonly_fields = ["progress_bar"]
    exclude = ["arguments"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    @admin.display(description="progress")
    def progress_bar(self, job):
        return format_html(
            '<progress max="100" value="{}" title="{}"></progress> {}% {}',
            job.progress,
            job.progress_message,
            job.progress,
            job.progress_message,
        )


from . import admin_accounts  # noqa: E402, F401  (users, groups and API tokens)
