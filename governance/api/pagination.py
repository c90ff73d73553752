from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request):
        """A page_size that is not a positive whole number is a 400, not the default size."""
        value = request.query_params.get(self.page_size_query_param, "")
        # Empty means not given, as for every query parameter.
        if value and (not value.isdigit() or int(value) < 1):
            raise ValidationError({"page_size": ["expected a whole number of at least 1"]})
        return super().get_page_size(request)
