import copy

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import construct_instance
from django.urls import reverse
from django.utils.html import format_html

from governance import jobs
from governance.admin import GovernedAdmin, ReadOnlyAdmin

from .models import ConnectionTest, DataSource
from .tasks import check_connections

# The form field that shows each error DataSource.set_secrets reports.
SECRET_FIELDS = {"password": "new_password", "options": "options_json"}


class DataSourceForm(forms.ModelForm):
    """The password is write-only: the page never carries it; empty keeps the stored one.
    Secret options show as "******" and keep their value when sent back unchanged. Either
    is kept only while the connection target stays the same (DataSource.set_secrets)."""

    new_password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the stored password.",
    )
    clear_password = forms.BooleanField(required=False, help_text="Remove the stored password.")
    options_json = forms.JSONField(
        label="Options",
        required=False,
        help_text='Driver options as JSON, e.g. {"tls": "require", "connect_timeout": 5}. '
        "Secret values show as ******; leave them to keep them.",
    )

    class Meta:
        model = DataSource
        fields = [
            "name",
            "kind",
            "environment",
            "host",
            "port",
            "database",
            "username",
            "owner",
            "description",
            "is_active",
            "scan_schedule",
            "scan_include_schemas",
            "scan_exclude_schemas",
            "scan_include_tables",
            "scan_exclude_tables",
            "scan_include_views",
            "scan_sample_values",
            "scan_sample_size",
            "scan_document_sample",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stored = copy.copy(self.instance) if self.instance.pk else None
        if self.stored is not None:
            self.fields["options_json"].initial = self.instance.masked_options()

    def clean(self):
        cleaned = super().clean()
        options = cleaned.get("options_json") or {}
        if not isinstance(options, dict):
            self.add_error("options_json", "options must be a JSON object")
            return cleaned
        # The new connection fields first: whether the secrets may be kept depends on them.
        construct_instance(self, self.instance, self._meta.fields, self._meta.exclude)
        password = "" if cleaned.get("clear_password") else cleaned.get("new_password") or None
        try:
            self.instance.set_secrets(self.stored, password=password, options=options)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(SECRET_FIELDS[field], errors)
        return cleaned

    def _post_clean(self):
        super()._post_clean()
        # Model.clean() reports option problems under "options"; show them on our field.
        if "options" in self._errors:
            self._errors["options_json"] = self._errors.pop("options")


@admin.register(DataSource)
class DataSourceAdmin(GovernedAdmin):
    form = DataSourceForm
    list_display = [
        "name",
        "kind",
        "environment",
        "host",
        "database",
        "owner",
        "is_active",
        "test_status",
        "last_test_at",
    ]
    list_filter = ["kind", "environment", "is_active", "last_test_ok"]
    search_fields = ["name", "host", "database", "description"]
    readonly_fields = [
        "masked_options",
        "last_scan_at",
        "last_test_at",
        "last_test_ok",
        "last_test_error_kind",
        "last_test_error",
        "created_at",
        "updated_at",
        "connection_log",
    ]
    fieldsets = [
        (None, {"fields": ["name", "kind", "environment", "owner", "description", "is_active"]}),
        (
            "Connection",
            {
                "fields": [
                    "host",
                    "port",
                    "database",
                    "username",
                    "new_password",
                    "clear_password",
                    "options_json",
                ]
            },
        ),
        (
            "Scanning",
            {
                "fields": [
                    "scan_schedule",
                    "scan_include_schemas",
                    "scan_exclude_schemas",
                    "scan_include_tables",
                    "scan_exclude_tables",
                    "scan_include_views",
                    "scan_sample_values",
                    "scan_sample_size",
                    "scan_document_sample",
                    "last_scan_at",
                ]
            },
        ),
        (
            "Last connection test",
            {
                "fields": [
                    "last_test_at",
                    "last_test_ok",
                    "last_test_error_kind",
                    "last_test_error",
                    "connection_log",
                ]
            },
        ),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]
    actions = ["test_connection"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        # Read-only pages show model values; the secrets have no business there.
        hidden = {"new_password", "clear_password", "options_json"}
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f not in hidden]})
            for name, opts in fieldsets
        ] + [("Options", {"fields": ["masked_options"]})]

    @admin.display(description="options")
    def masked_options(self, source):
        return source.masked_options()

    @admin.display(description="last test", boolean=True)
    def test_status(self, source):
        return source.last_test_ok

    @admin.display(description="connection tests")
    def connection_log(self, source):
        if not source.pk:
            return "-"
        url = reverse("admin:sources_connectiontest_changelist")
        return format_html(
            '<a href="{}?source__id__exact={}">Connection-test log</a>', url, source.pk
        )

    @admin.action(description="Test connection of selected sources")
    def test_connection(self, request, queryset):
        allowed = [s.pk for s in queryset if self.has_change_permission(request, s)]
        if len(allowed) < queryset.count():
            self.message_user(request, "Sources you may not change were skipped.", messages.WARNING)
        if not allowed:
            return
        target = queryset.get(pk=allowed[0]) if len(allowed) == 1 else None
        job = jobs.enqueue(
            check_connections,
            name="Test connections",
            target=target,
            user=request.user,
            source_ids=allowed,
        )
        url = reverse("admin:governance_jobrun_change", args=[job.pk])
        self.message_user(
            request,
            format_html(
                'Testing {} source(s) in the background: <a href="{}">job #{}</a>.',
                len(allowed),
                url,
                job.pk,
            ),
        )


@admin.register(ConnectionTest)
class ConnectionTestAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "source",
        "operation",
        "ok",
        "error_kind",
        "latency_ms",
        "server_version",
        "user",
    ]
    list_filter = ["ok", "error_kind", "operation", ("source", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["source__name", "error"]
    date_hierarchy = "created_at"
