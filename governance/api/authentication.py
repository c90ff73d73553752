from drf_spectacular import authentication as authentication_schemes
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .. import mfa, tokens


class TokenAuthentication(authentication.BaseAuthentication):
    """API tokens as `Authorization: Token <key>` or `Authorization: Bearer <key>`
    (the OpenLineage clients send Bearer). Keys are looked up by digest (governance.tokens)."""

    keywords = (b"token", b"bearer")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header: give the key after the keyword, with no spaces in it."
            )
        try:
            key = header[1].decode()
            token = tokens.authenticate(key)
        except UnicodeError:
            token = None
        except tokens.Expired:
            raise exceptions.AuthenticationFailed(
                "This token has expired; create a new one."
            ) from None
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return token.user, token

    def authenticate_header(self, request):
        return "Token"


class SessionAuthentication(authentication.SessionAuthentication):
    """The admin's session, once it has given any second factor it owes."""

    def authenticate(self, request):
        found = super().authenticate(request)
        if found is not None and mfa.pending(request._request):
            return None
        return found


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'An API token after "Token " or "Bearer "',
        }


class SessionScheme(authentication_schemes.SessionScheme):
    target_class = SessionAuthentication
