from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from .health import health

api_v1 = [
    path("", include("governance.api.urls")),
    path("", include("sources.api.urls")),
    path("", include("catalog.api.urls")),
    path("", include("lineage.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api-auth/", include("rest_framework.urls")),
    path("health/", health, name="health"),
    path("", include("django_prometheus.urls")),
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
