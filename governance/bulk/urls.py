from django.urls import re_path

from .api import BulkExportView, BulkImportView, BulkSchemaView

urlpatterns = [
    re_path(r"^bulk/import/?$", BulkImportView.as_view(), name="bulk-import"),
    re_path(r"^bulk/export/?$", BulkExportView.as_view(), name="bulk-export"),
    re_path(r"^bulk/schema/?$", BulkSchemaView.as_view(), name="bulk-schema"),
]
