from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "lineage"

    def ready(self):
        from governance.bulk import sections

        from .bulk import LineageSection

        sections.register(LineageSection)
