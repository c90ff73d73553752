from governance.api.routers import Router

from .views import (
    ClassificationViewSet,
    FieldViewSet,
    SearchViewSet,
    SourceCatalogViewSet,
    TableViewSet,
    TagCategoryViewSet,
    TagViewSet,
)

router = Router()
router.register("catalog/search", SearchViewSet, basename="catalog-search")
router.register("catalog/tables", TableViewSet)
router.register("catalog/fields", FieldViewSet)
router.register("catalog/tag-categories", TagCategoryViewSet)
router.register("catalog/tags", TagViewSet)
router.register("catalog/classifications", ClassificationViewSet)
router.register("sources", SourceCatalogViewSet, basename="source-catalog")

urlpatterns = router.urls
