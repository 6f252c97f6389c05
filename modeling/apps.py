from django.apps import AppConfig


class ModelingConfig(AppConfig):
    name = "modeling"
    verbose_name = "Modeling"

    def ready(self) -> None:
        from modeling import exports, overview  # noqa: F401  (register the export columns and overview panel)
