from governance.api.routers import Router

from .views import ConnectionTestViewSet, DataSourceViewSet

router = Router()
router.register("sources", DataSourceViewSet)
router.register("audit/connection-tests", ConnectionTestViewSet)

urlpatterns = router.urls
