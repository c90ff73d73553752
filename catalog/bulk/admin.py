"""The admin's bulk screen (governance.bulk.admin) over the tables a user may view."""

from django.contrib import admin

from governance.bulk.admin import BulkTransferAdmin
from governance.permissions import can

from ..models import Table
from .models import CatalogTransfer


@admin.register(CatalogTransfer)
class CatalogTransferAdmin(BulkTransferAdmin):
    list_display = ["fqn", "kind", "source", "owner", "updated_at"]
    list_filter = [("source", admin.RelatedOnlyFieldListFilter), "kind", "tags"]
    search_fields = ["fqn"]
    list_select_related = ["source", "owner"]

    def get_queryset(self, request):
        visible = Table.objects.restrict(request.user, "view").filter(removed=False)
        return super().get_queryset(request).filter(pk__in=visible.values("pk"))

    def has_view_permission(self, request, obj=None):
        staff = request.user.is_active and request.user.is_staff
        return staff and (obj is None or can(request.user, "view", obj))
