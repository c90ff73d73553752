"""The one base viewset: every queryset restricted by object permissions, the action's
permission checked on the object, writes in a transaction and re-checked after saving."""

from django.db import transaction
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.filters import OrderingFilter

from ..permissions import METHOD_ACTIONS, can, perm_name
from ..services import grant_creator


class GovernedViewSet(viewsets.ModelViewSet):
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    throttle_scope = None  # an @action may set a stricter scope (see DEFAULT_THROTTLE_RATES)
    # The permission an @action needs on its object; others need view (safe methods) or change.
    action_permissions: dict[str, str] = {"access_control": "change"}

    @property
    def model(self):
        return self.queryset.model

    def permission_action(self):
        if self.action in self.action_permissions:
            return self.action_permissions[self.action]
        if self.action in {"list", "retrieve", "create", "update", "partial_update", "destroy"}:
            return METHOD_ACTIONS[self.request.method]
        return "view" if self.request.method in ("GET", "HEAD", "OPTIONS") else "change"

    def get_queryset(self):
        return self.queryset.all().restrict(self.request.user, "view")

    def check_permissions(self, request):
        super().check_permissions(request)
        if (
            self.action == "create"
            and not getattr(self.model, "permission_parent", None)
            and not request.user.has_perm(perm_name(self.model, "add"))
        ):
            self.permission_denied(
                request, message=f"You may not add {self.model._meta.verbose_name_plural}."
            )

    def get_object(self):
        obj = super().get_object()  # 404 when the user may not even see it
        action = self.permission_action()
        if action != "view" and not can(self.request.user, action, obj):
            self.permission_denied(
                self.request,
                message=f"You may not {action} this {self.model._meta.verbose_name}.",
            )
        return obj

    def recheck(self, obj, action):
        """After the write, the result must still be something the user may act on."""
        if not can(self.request.user, action, obj):
            raise PermissionDenied(
                f"You may not {action} this {self.model._meta.verbose_name} as written."
            )

    @transaction.atomic
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    @transaction.atomic
    def update(self, request, *args, **kwargs):
        return super().update(request, *args, **kwargs)

    @transaction.atomic
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def perform_create(self, serializer):
        obj = serializer.save()
        grant_creator(self.request.user, obj)
        self.recheck(obj, "view")

    def perform_update(self, serializer):
        obj = serializer.save()
        self.recheck(obj, "change")


class GovernedReadOnlyViewSet(GovernedViewSet):
    http_method_names = ["get", "head", "options"]
