from rest_framework import authentication


class TokenAuthentication(authentication.TokenAuthentication):
    """API tokens as `Authorization: Token <key>` or `Authorization: Bearer <key>`
    (the OpenLineage clients send Bearer)."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if header and header[0].lower() == b"bearer":
            if len(header) != 2:
                return None
            return self.authenticate_credentials(header[1].decode(errors="replace"))
        return super().authenticate(request)
