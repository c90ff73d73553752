from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import AllowAny

from ..filtersets import JobRunFilterSet
from ..models import JobRun
from .parsers import FormParser, JSONParser, MultiPartParser
from .serializers import JobRunSerializer
from .throttling import ScopedRateThrottle
from .viewsets import GovernedReadOnlyViewSet


class JobRunViewSet(GovernedReadOnlyViewSet):
    queryset = JobRun.objects.select_related("user", "target_type")
    serializer_class = JobRunSerializer
    filterset_class = JobRunFilterSet
    ordering_fields = ["created_at", "status", "name"]


class TokenView(ObtainAuthToken):
    """POST username and password, get {"token": ...} for `Authorization: Token <token>`."""

    permission_classes = [AllowAny]
    parser_classes = [JSONParser, FormParser, MultiPartParser]  # the checked ones
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"
