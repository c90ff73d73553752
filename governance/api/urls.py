from django.urls import path

from .routers import Router
from .views import JobRunViewSet, TokenView

router = Router()
router.register("jobs", JobRunViewSet)

urlpatterns = [path("auth/token/", TokenView.as_view(), name="api-token"), *router.urls]
