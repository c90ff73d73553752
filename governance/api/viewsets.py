"""The one base viewset: every queryset restricted by object permissions, the action's
permission checked on the object, writes in a transaction and re-checked after saving."""

import copy

from django.db import transaction
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import mixins, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.filters import OrderingFilter
from rest_framework.permissions import SAFE_METHODS

from .. import changelog
from ..filtersets import GovernedFilterBackend
from ..permissions import METHOD_ACTIONS, can, may_write, perm_name
from ..services import grant_creator


class GovernedGenericViewSet(viewsets.GenericViewSet):
    """The permission logic alone, for viewsets that only add @actions to another app's model."""

    filter_backends = [GovernedFilterBackend, OrderingFilter]
    throttle_scope = None  # an @action may set a stricter scope (see DEFAULT_THROTTLE_RATES)
    # The permission an @action needs on its object; others need view (safe methods) or change.
    action_permissions: dict[str, str] = {"access_control": "change"}

    @property
    def model(self):
        return self.queryset.model

    def dispatch(self, request, *args, **kwargs):
        if request.method in SAFE_METHODS:
            with changelog.reading():
                return super().dispatch(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)

    def permission_action(self):
        if self.action in self.action_permissions:
            return self.action_permissions[self.action]
        if self.action in {"list", "retrieve", "create", "update", "partial_update", "destroy"}:
            return METHOD_ACTIONS[self.request.method]
        return "view" if self.request.method in ("GET", "HEAD", "OPTIONS") else "change"

    def get_queryset(self):
        return self.queryset.all().restrict(self.request.user, "view")

    def filter_queryset(self, queryset):
        """Without query parameters django-filter has nothing to filter: skip building its
        filter set and form, which would otherwise cost every detail request too."""
        if self.request.query_params:
            return super().filter_queryset(queryset)
        for backend in self.filter_backends:
            if not issubclass(backend, DjangoFilterBackend):
                queryset = backend().filter_queryset(self.request, queryset, self)
        return queryset

    def check_permissions(self, request):
        super().check_permissions(request)
        if self.action == "create" and not self.may_create(request.user):
            self.permission_denied(
                request, message=f"You may not add {self.model._meta.verbose_name_plural}."
            )

    def may_create(self, user):
        """Before validation: could this user create anything here? The object itself is
        checked again once written."""
        if user.has_perm(perm_name(self.model, "add")):
            return True
        parent_field = getattr(self.model, "permission_parent", None)
        if not parent_field:
            return False
        parent_model = self.model._meta.get_field(parent_field).related_model
        return parent_model.objects.restrict(user, "change").exists()

    def get_object(self):
        obj = super().get_object()  # 404 when the user may not even see it
        action = self.permission_action()
        if action != "view" and not can(self.request.user, action, obj):
            self.permission_denied(
                self.request,
                message=f"You may not {action} this {self.model._meta.verbose_name}.",
            )
        return obj

    def recheck(self, obj, action, original=None):
        """After the write, the result must still be something the user may act on (and,
        for a change, so must the object as it was: see may_write)."""
        if not may_write(self.request.user, action, obj, original):
            raise PermissionDenied(
                f"You may not {action} this {self.model._meta.verbose_name} as written."
            )


class GovernedViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    GovernedGenericViewSet,
):
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
        self.recheck(obj, "add")

    def perform_update(self, serializer):
        original = copy.copy(serializer.instance)
        obj = serializer.save()
        self.recheck(obj, "change", original)


class GovernedReadOnlyViewSet(GovernedViewSet):
    http_method_names = ["get", "head", "options"]
