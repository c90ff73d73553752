from django.urls import path, re_path

from governance.uploads import accepts_body

from .api import BulkExportView, BulkImportErrorsView, BulkImportView, BulkSchemaView
from .importer import request_limit

urlpatterns = [
    re_path(
        r"^bulk/import/?$",
        accepts_body(request_limit)(BulkImportView.as_view()),
        name="bulk-import",
    ),
    path(
        "bulk/imports/<uuid:key>/errors",
        BulkImportErrorsView.as_view(),
        name="bulk-import-errors",
    ),
    re_path(r"^bulk/export/?$", BulkExportView.as_view(), name="bulk-export"),
    re_path(r"^bulk/schema/?$", BulkSchemaView.as_view(), name="bulk-schema"),
]
