"""The admin's bulk screen: a changelist with export actions (JSON, YAML, CSV, XLSX), and an
import page that previews a dry run's counts and errors before applying. An app registers it
on its own model (catalog: a proxy of its tables) and says what the user may see there."""

from django import forms
from django.contrib import admin, messages
from django.http import Http404, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from governance.uploads import accepts_body

from . import exporter, formats, importer


class ImportForm(forms.Form):
    file = forms.FileField()
    format = forms.ChoiceField(
        choices=[("", "detect from the content"), *[(f, f.upper()) for f in formats.FORMATS]],
        required=False,
    )
    mode = forms.ChoiceField(
        choices=[
            ("create", "create: add new tables only, refuse existing ones"),
            ("upsert", "upsert: add new, update existing (by fully qualified name)"),
        ],
        initial="create",
    )
    dry_run = forms.BooleanField(
        required=False, initial=True, label="Dry run: check and count, write nothing"
    )


def export_action(fmt):
    def action(modeladmin, request, queryset):
        try:
            export = exporter.bulk_export(
                user=request.user, format=fmt, filters={"selected": queryset}, request=request
            )
        except exporter.ExportRefused as exc:
            modeladmin.message_user(request, str(exc), messages.ERROR)
            return None
        response = StreamingHttpResponse(export.chunks, content_type=export.content_type)
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        return response

    action.__name__ = f"export_{fmt}"
    action.short_description = f"Export selected tables with their lineage as {fmt.upper()}"
    return action


class BulkTransferAdmin(admin.ModelAdmin):
    """Read-only changelist + export actions + the import page at <changelist>/import/."""

    actions = [export_action(fmt) for fmt in formats.FORMATS]
    change_list_template = "admin/bulk/change_list.html"

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "import/",
                self.admin_site.admin_view(accepts_body(importer.request_limit)(self.import_view)),
                name=f"{opts.app_label}_{opts.model_name}_import",
            ),
            path(
                "import/errors/<uuid:key>/",
                self.admin_site.admin_view(self.errors_view),
                name=f"{opts.app_label}_{opts.model_name}_import_errors",
            ),
            *super().get_urls(),
        ]

    def errors_url(self, key, page):
        opts = self.model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_import_errors", args=[key])
        return f"{url}?page={page}"

    def errors_view(self, request, key):
        """A page of every error of a refused import, as the import page links to it."""
        if not self.has_module_permission(request):
            return self.admin_site.login(request)
        page = importer.error_page(request.user, key, request.GET.get("page", "1"))
        if page is None:
            raise Http404("no such page of import errors")
        number = page.number
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Import errors, page {number} of {page.page_count}",
            "error_count": page.error_count,
            "errors": page.errors,
            "previous_url": self.errors_url(key, number - 1) if number > 1 else "",
            "next_url": self.errors_url(key, number + 1) if number < page.page_count else "",
        }
        return TemplateResponse(request, "admin/bulk/errors.html", context)

    def import_view(self, request):
        if not self.has_module_permission(request):
            return self.admin_site.login(request)
        result = rejected = job = None
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            options = form.cleaned_data
            try:
                outcome, value = importer.bulk_import_submit(
                    upload=options["file"],
                    user=request.user,
                    format=options["format"] or None,
                    mode=options["mode"],
                    dry_run=options["dry_run"],
                )
            except importer.ImportRejected as exc:
                rejected = exc.as_dict()
                if exc.key is not None and "errors_next" in rejected:
                    rejected["next_url"] = self.errors_url(exc.key, 2)
            else:
                if outcome == "job":
                    job = value
                else:
                    result = value
                    if not options["dry_run"]:
                        self.message_user(request, "Imported.", messages.SUCCESS)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import catalog file",
            "form": form,
            "result": result,
            "rejected": rejected,
            "job": job,
            "job_url": reverse("admin:governance_jobrun_change", args=[job.pk]) if job else "",
            "schema_url": "/api/v1/bulk/schema",
        }
        return TemplateResponse(request, "admin/bulk/import.html", context)
