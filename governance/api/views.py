from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import tokens
from ..auth import lock_message, retry_after
from ..filtersets import JobRunFilterSet
from ..models import ApiToken, JobRun
from .serializers import (
    ApiTokenSerializer,
    JobRunSerializer,
    NewApiTokenSerializer,
    SignInSerializer,
)
from .throttling import ScopedRateThrottle
from .viewsets import GovernedReadOnlyViewSet


class JobRunViewSet(GovernedReadOnlyViewSet):
    queryset = JobRun.objects.select_related("user", "target_type")
    serializer_class = JobRunSerializer
    filterset_class = JobRunFilterSet
    ordering_fields = ["created_at", "status", "name"]


def new_token_response(user, name, status_code):
    token, key = tokens.token_create(user=user, name=name)
    token.token = key
    return Response(NewApiTokenSerializer(token).data, status=status_code)


class TokenView(APIView):
    """POST username and password (and a name for the token), get {"token": ...} for
    `Authorization: Token <token>`. The key is shown in this answer only."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=SignInSerializer, responses=NewApiTokenSerializer)
    def post(self, request):
        serializer = SignInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = authenticate(request, username=data["username"], password=data["password"])
        if user is None:
            wait = retry_after(request, data["username"])
            if wait:
                return Response(
                    {"detail": lock_message(wait), "retry_after": wait},
                    status=status.HTTP_429_TOO_MANY_REQUESTS,
                    headers={"Retry-After": str(wait)},
                )
            raise ValidationError({"detail": "Unable to sign in with these credentials."})
        return new_token_response(user, data["name"], status.HTTP_200_OK)


class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your own API tokens: list them (never their keys), create a named one (its key is in
    that answer only), revoke one."""

    queryset = ApiToken.objects.all()
    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        action = "delete" if self.request.method == "DELETE" else "view"
        user = self.request.user
        return ApiToken.objects.restrict(user, action).filter(user=user).select_related("user")

    @extend_schema(responses={201: NewApiTokenSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        name = serializer.validated_data["name"]
        return new_token_response(request.user, name, status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        tokens.tokens_revoke(ApiToken.objects.filter(pk=instance.pk), reason="revoked by its owner")
