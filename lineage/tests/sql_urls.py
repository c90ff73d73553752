"""The project's URLs plus the SQL lineage endpoint, for tests that run before it is mounted."""

from django.urls import path

from governance.urls import urlpatterns as project_urlpatterns
from lineage.api.sql import SqlLineageView

urlpatterns = [
    path("api/v1/lineage/sql", SqlLineageView.as_view()),
    *project_urlpatterns,
]
