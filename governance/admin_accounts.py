"""Users and groups in the admin, held to one rule: nobody makes anyone more powerful than
they are themselves. Only superusers grant or remove superuser and staff status or change a
superuser; anyone else may edit only users and groups that hold no more than they do, and
hand out only the groups and permissions they hold."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import mfa, tokens
from .models import ApiToken

User = get_user_model()


def perm_names(permissions):
    return {f"{p.content_type.app_label}.{p.codename}" for p in permissions}


def holds(user, perms):
    """True when `user` holds every one of `perms` ("app.codename") globally."""
    return user.is_superuser or set(perms) <= user.get_all_permissions()


def held_permissions(user):
    permissions = Permission.objects.select_related("content_type")
    if user.is_superuser:
        return permissions
    held = user.get_all_permissions()
    ids = [p.pk for p in permissions if f"{p.content_type.app_label}.{p.codename}" in held]
    return permissions.filter(pk__in=ids)


def assignable_groups(user):
    groups = Group.objects.prefetch_related("permissions__content_type")
    if user.is_superuser:
        return groups
    ids = [g.pk for g in groups if holds(user, perm_names(g.permissions.all()))]
    return Group.objects.filter(pk__in=ids)


class StewardUserAdmin(UserAdmin):
    actions = ["reset_two_factor"]

    @admin.action(description="Reset two-factor sign-in of selected users")
    def reset_two_factor(self, request, queryset):
        users = [u for u in queryset if self.has_change_permission(request, u)]
        for user in users:
            mfa.reset(user)
        self.message_user(request, f"Two-factor sign-in reset for {len(users)} user(s).")

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return fields
        return (*fields, "is_superuser", "is_staff")

    def may_manage(self, request, user):
        if user is None or request.user.is_superuser:
            return True
        return not user.is_superuser and holds(request.user, user.get_all_permissions())

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self.may_manage(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self.may_manage(request, obj)

    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        if db_field.name == "groups":
            kwargs["queryset"] = assignable_groups(request.user)
        elif db_field.name == "user_permissions":
            kwargs["queryset"] = held_permissions(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class StewardGroupAdmin(GroupAdmin):
    def may_manage(self, request, group):
        return group is None or holds(request.user, perm_names(group.permissions.all()))

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self.may_manage(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self.may_manage(request, obj)

    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        if db_field.name == "permissions":
            kwargs["queryset"] = held_permissions(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens by prefix, owner and dates; deleting one is revoking it. Keys are never
    stored, so no page can show one."""

    list_display = ApiToken.SHOWN_FIELDS
    fields = readonly_fields = ApiToken.SHOWN_FIELDS
    list_filter = ["created_at", "expires_at", "last_used_at"]
    search_fields = ["prefix", "name", "user__username"]
    actions = ["delete_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user).select_related("user")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False  # a token is made by its owner (API), who alone sees the key

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        if obj is None:
            return self.has_module_permission(request)
        return ApiToken.objects.restrict(request.user, "delete").filter(pk=obj.pk).exists()

    def delete_model(self, request, obj):
        tokens.tokens_revoke(
            ApiToken.objects.filter(pk=obj.pk), reason=f"revoked in the admin by {request.user}"
        )

    def delete_queryset(self, request, queryset):
        allowed = queryset.restrict(request.user, "delete")
        tokens.tokens_revoke(allowed, reason=f"revoked in the admin by {request.user}")

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            function, name, _ = actions["delete_selected"]
            actions["delete_selected"] = (function, name, "Revoke selected API tokens")
        return actions


for model, model_admin in ((User, StewardUserAdmin), (Group, StewardGroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)

# django-otp's own screens show authenticator keys and recovery codes: users enrol on the
# admin's two-factor page, and the user admin's action resets a lost device.
for model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
