"""A trigram index for the item list's text search (PostgreSQL only).

Django renders ``text__icontains`` as ``UPPER(text) LIKE UPPER(%s)``, so the GIN index is built on
``UPPER(text)``; it makes substring search fast at a million items in any script (no stemming,
no stop-word list). SQLite has no equivalent and skips this migration.
"""

from django.db import migrations

CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS item_text_upper_trgm ON labeling_item USING gin (UPPER(text) gin_trgm_ops)",
]
DROP = ["DROP INDEX IF EXISTS item_text_upper_trgm"]


def _run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("labeling", "0002_initial")]
    operations = [migrations.RunPython(_run(CREATE), _run(DROP))]
