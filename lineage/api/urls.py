from django.urls import re_path

from governance.api.routers import Router
from governance.uploads import accepts_body

from .openlineage import OpenLineageView, body_limit
from .sql import SqlLineageView
from .views import LineageEdgeViewSet

router = Router()
router.register("lineage", LineageEdgeViewSet, basename="lineage")

# With and without the trailing slash: OpenLineage clients post to the path as configured.
urlpatterns = [
    re_path(r"^lineage/sql/?$", SqlLineageView.as_view(), name="lineage-sql"),
    re_path(
        r"^lineage/openlineage/?$",
        accepts_body(body_limit)(OpenLineageView.as_view()),
        name="lineage-openlineage",
    ),
    *router.urls,
]
