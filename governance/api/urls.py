from django.urls import path

from ..bulk.urls import urlpatterns as bulk_urlpatterns
from .routers import Router
from .views import ApiTokenViewSet, JobRunViewSet, TokenView

router = Router()
router.register("jobs", JobRunViewSet)
router.register("auth/tokens", ApiTokenViewSet)

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    *router.urls,
    *bulk_urlpatterns,
]
