"""The project's URLs plus the OpenLineage endpoint, for tests that run before it is mounted."""

from django.urls import path

from governance.urls import urlpatterns as project_urlpatterns
from lineage.api.openlineage import OpenLineageView

urlpatterns = [
    path("api/v1/lineage/openlineage", OpenLineageView.as_view()),
    *project_urlpatterns,
]
