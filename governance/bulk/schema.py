"""The JSON Schema of the JSON and YAML bundle document, served at /api/v1/bulk/schema:
the document's header and the properties each registered section adds."""

from . import sections

TIMESTAMP = {"type": "string", "format": "date-time", "readOnly": True}


def document_schema():
    properties = {
        "kind": {"const": "steward-catalog"},
        "version": {"const": 1},
        "exported_at": {"type": "string"},
    }
    for section in sections.ordered():
        properties.update(section.schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "steward-catalog-v1",
        "title": "Steward catalog document",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }
