from ..models import Table


class CatalogTransfer(Table):
    """The admin's bulk import and export screen: the tables, seen through a proxy."""

    class Meta:
        proxy = True
        app_label = "catalog"
        verbose_name = "bulk import / export"
        verbose_name_plural = "bulk import / export"
