from rest_framework.routers import SimpleRouter


class Router(SimpleRouter):
    """Paths work with and without the trailing slash: clients such as the OpenLineage
    HTTP transport post to a path exactly as configured."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
