from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views import defaults
from django_prometheus.exports import ExportToDjangoView
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from .health import health
from .internal import signed_in_or_allowlisted
from .middleware import csp_override

api_v1 = [
    path("", include("governance.api.urls")),
    path("", include("sources.api.urls")),
    path("", include("catalog.api.urls")),
    path("", include("lineage.api.urls")),
]

swagger = SpectacularSwaggerSplitView.as_view(
    url_name="schema", template_name="governance/swagger_ui.html"
)
redoc = SpectacularRedocView.as_view(url_name="schema", template_name="governance/redoc.html")
# Redoc writes <style> elements as it runs (styled-components takes no nonce from outside its
# bundle) and searches in a worker made from a blob: URL; its scripts still come from here.
redoc = csp_override(style_src="'self' 'unsafe-inline'", worker_src="'self' blob:")(redoc)
# Pages about the console rather than its data: for signed-in users and METRICS_ALLOW.
internal = signed_in_or_allowlisted

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", internal(SpectacularAPIView.as_view()), name="schema"),
    path("api/docs/", internal(swagger), name="api-docs"),
    path("api/redoc/", internal(redoc), name="api-redoc"),
    path("api-auth/", include("rest_framework.urls")),
    path("health/", health, name="health"),
    path("metrics", internal(ExportToDjangoView), name="prometheus-django-metrics"),
]

admin.site.site_header = "Steward"
admin.site.site_title = "Steward"
admin.site.index_title = "Data governance"


def not_found(request, exception):
    """A path that matches no route answers in the API's own JSON under /api/."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


handler404 = not_found
