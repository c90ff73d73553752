import copy

from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import NestedObjects, quote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import router
from django.db.models import Q
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from guardian.admin import GuardedModelAdmin

from .models import AccessLogEntry, ChangeLogEntry, JobRun
from .permissions import can, is_governed, may_write, perm_name, usable
from .services import grant_creator


def relation(form, name):
    """The model relation behind a form's choice field, or None for any other field."""
    if not isinstance(form.fields[name], forms.ModelChoiceField):
        return None
    try:
        field = form._meta.model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return field if field.is_relation and field.concrete else None


def held(instance, field, to_field):
    """The values a saved instance already holds in a relation field."""
    if instance._state.adding:
        return []
    if field.many_to_many:
        return list(getattr(instance, field.name).values_list(to_field, flat=True))
    value = getattr(instance, field.attname)
    return [] if value is None else [value]


class GovernedForm:
    """Mixed into every admin model form of a governed admin (its own form, inline rows,
    list-editable rows): each relation field offers only what the user may use (usable()),
    plus what the object already holds (an unchanged value writes nothing), so that any other
    id, hidden or missing, is the same invalid choice; and the object is remembered as it
    was, for the check after saving."""

    governed_user = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.original = None if self.instance._state.adding else copy.copy(self.instance)
        for name, formfield in self.fields.items():
            field = relation(self, name)
            if field is None:
                continue
            to_field = formfield.to_field_name or "pk"
            offered = usable(self.governed_user, field, formfield.queryset)
            kept = held(self.instance, field, to_field)
            if kept:
                offered |= formfield.queryset.filter(**{f"{to_field}__in": kept})
            formfield.queryset = offered


class GovernedFormSet:
    """Mixed into every formset of a governed admin (inline rows, list-editable rows): a row
    names an existing object only among the formset's own; Django accepts any id of the
    model there (and then ignores the row), which would tell a hidden id from a missing one."""

    def add_fields(self, form, index):
        super().add_fields(form, index)
        pk = self.model._meta.pk
        if not pk.is_relation and pk.name in form.fields:
            form.fields[pk.name].queryset = self.get_queryset()


def governed_form(form_class, user):
    return type(form_class.__name__, (GovernedForm, form_class), {"governed_user": user})


def governed_formset(formset_class, user):
    form = governed_form(formset_class.form, user)
    return type(formset_class.__name__, (GovernedFormSet, formset_class), {"form": form})


def autocomplete_field(request):
    """The relation an admin autocomplete request fills in, or None for any other request."""
    match = request.resolver_match
    if match is None or match.url_name != "autocomplete":
        return None
    # AutocompleteJsonView has checked these names before it asks for search results.
    model = apps.get_model(request.GET["app_label"], request.GET["model_name"])
    return model._meta.get_field(request.GET["field_name"])


def hidden_among(user, objs):
    """(model, pk) of the objects the user may not view, one query per governed model."""
    by_model = {}
    for obj in objs:
        by_model.setdefault(type(obj), set()).add(obj.pk)
    hidden = set()
    for model, pks in by_model.items():
        if hasattr(model._default_manager, "restrict"):
            visible = model._default_manager.restrict(user, "view").filter(pk__in=pks)
            hidden |= {(model, pk) for pk in pks - set(visible.values_list("pk", flat=True))}
    return hidden


class GovernedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A list filter over a relation lists only the objects the user may view (users: those
    that may be named at all); a filter must not name what the changelist hides."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        visible = usable(request.user, field, action="view")
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to=Q(pk__in=visible.values("pk"))
        )


# Every admin's plain relation filters (`list_filter = ["source"]`), present and future.
admin.FieldListFilter.register(
    lambda field: field.remote_field is not None and is_governed(field.related_model),
    GovernedRelatedFieldListFilter,
    take_priority=True,
)


class GovernedAdmin(GuardedModelAdmin):
    """Admin screens go through the same object permissions as the API: the changelist
    shows what the user may view, the change page opens only with a grant, every relation
    field (inline rows and autocompletes included) offers only what the user may use, and
    every saved object is checked as the API checks it (may_write)."""

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, "view")

    def get_form(self, request, obj=None, change=False, **kwargs):
        return governed_form(super().get_form(request, obj, change, **kwargs), request.user)

    def get_changelist_formset(self, request, **kwargs):
        return governed_formset(super().get_changelist_formset(request, **kwargs), request.user)

    def get_formsets_with_inlines(self, request, obj=None):
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            yield governed_formset(formset, request.user), inline

    def get_search_results(self, request, queryset, search_term):
        queryset, distinct = super().get_search_results(request, queryset, search_term)
        field = autocomplete_field(request)
        if field is not None:  # the choices of another admin's autocomplete field
            queryset = usable(request.user, field, queryset)
        return queryset, distinct

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            grant_creator(request.user, obj)

    def save_related(self, request, form, formsets, change):
        """After everything is written (inside the admin's transaction): the object and each
        inline row must be something the user may have written, or nothing is kept."""
        super().save_related(request, form, formsets, change)
        written = [(form.instance, form.original)]
        for formset in formsets:
            originals = {id(row.instance): getattr(row, "original", None) for row in formset}
            written += [(obj, None) for obj in formset.new_objects]
            written += [(obj, originals.get(id(obj))) for obj, _ in formset.changed_objects]
        for obj, original in written:
            action = "add" if original is None else "change"
            if not may_write(request.user, action, obj, original):
                raise PermissionDenied(
                    f"You may not {action} this {obj._meta.verbose_name} as written."
                )

    def get_deleted_objects(self, objs, request):
        """What the delete page and the delete action list as going with the objects: as
        Django lists it (each object named and linked, every one needing the delete
        permission), except that an object the user may not view is named by its kind only."""
        collector = NestedObjects(using=router.db_for_write(self.model))
        collector.collect(objs)
        found = [obj for group in collector.model_objs.values() for obj in group]
        hidden = hidden_among(request.user, [*found, *collector.protected])
        perms_needed = set()

        def describe(obj):
            opts, model_admin = obj._meta, self.admin_site._registry.get(type(obj))
            kind = capfirst(opts.verbose_name)
            if model_admin is not None and not model_admin.has_delete_permission(request, obj):
                perms_needed.add(opts.verbose_name)
            if (type(obj), obj.pk) in hidden:
                return f"{kind}: one you may not view"
            if model_admin is None:
                return f"{kind}: {obj}"
            name = f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change"
            return format_html(
                '{}: <a href="{}">{}</a>', kind, reverse(name, args=[quote(obj.pk)]), obj
            )

        to_delete = collector.nested(describe)
        protected = [describe(obj) for obj in collector.protected]
        counts = {
            model._meta.verbose_name_plural: len(group)
            for model, group in collector.model_objs.items()
        }
        return to_delete, counts, perms_needed, protected

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
