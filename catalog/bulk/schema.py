"""The JSON Schema of the JSON and YAML catalog document, served at /api/v1/bulk/schema."""

from catalog.models import Classification, Table

ORIGINS = ["manual", "inferred", "openlineage"]
STATUSES = ["approved", "pending", "rejected"]

_text = {"type": "string"}
_timestamp = {"type": "string", "format": "date-time", "readOnly": True}
_tags = {
    "type": "array",
    "items": {"type": "string", "pattern": r"^[^.]+\..+$"},
    "description": 'Tags as "Category.Name"; the list replaces the object\'s tags.',
}

CLASSIFICATION = {
    "type": "object",
    "required": ["rule", "tag"],
    "additionalProperties": False,
    "properties": {
        "rule": {"type": "string", "maxLength": 64},
        "tag": {"type": "string"},
        "status": {"enum": list(Classification.Status.values)},
        "method": {"type": "string", "maxLength": 20},
        "hit_ratio": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "sample_size": {"type": "integer", "minimum": 0},
        "decided_by": {"type": ["string", "null"]},
        "decided_at": {"type": ["string", "null"], "readOnly": True},
    },
}

FIELD = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 500},
        "position": {"type": "integer", "minimum": 0},
        "data_type": {"type": "string", "maxLength": 30},
        "native_type": {"type": "string", "maxLength": 200},
        "nullable": {"type": "boolean"},
        "default": {"type": ["string", "null"]},
        "is_primary_key": {"type": "boolean"},
        "foreign_key": {"type": "string", "maxLength": 800},
        "description": _text,
        "comment": _text,
        "tags": _tags,
        "classifications": {"type": "array", "items": CLASSIFICATION},
        "created_at": _timestamp,
        "updated_at": _timestamp,
    },
}

TABLE = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "source": {
            "type": ["string", "null"],
            "description": "The data source's name; null or absent for a manual table.",
        },
        "schema": {"type": "string", "maxLength": 255},
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "kind": {"enum": list(Table.Kind.values)},
        "description": _text,
        "comment": _text,
        "owner": {"type": ["string", "null"], "description": "A username."},
        "tags": _tags,
        "data_domain": {"type": "string", "maxLength": 100},
        "purpose": _text,
        "legal_basis": {"enum": ["", *Table.LegalBasis.values]},
        "retention_days": {"type": ["integer", "null"], "minimum": 0},
        "residency_region": {"type": "string", "maxLength": 50},
        "criticality": {"enum": ["", *Table.Criticality.values]},
        "pci_scope": {"type": "boolean"},
        "view_definition": _text,
        "created_at": _timestamp,
        "updated_at": _timestamp,
        "fields": {"type": "array", "items": FIELD},
    },
}

EDGE = {
    "type": "object",
    "required": ["source", "target"],
    "additionalProperties": False,
    "properties": {
        "source": {"type": "string", "description": "Upstream table's fully qualified name."},
        "target": {"type": "string", "description": "Downstream table's fully qualified name."},
        "origin": {"enum": ORIGINS},
        "status": {"enum": STATUSES},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "created_at": _timestamp,
        "updated_at": _timestamp,
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["source", "target"],
                "additionalProperties": False,
                "properties": {
                    "source": {"type": "string"},
                    "target": {"type": "string"},
                    "transformation": {"type": "string"},
                },
            },
        },
    },
}

CATALOG_DOCUMENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "steward-catalog-v1",
    "title": "Steward catalog document",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "kind": {"const": "steward-catalog"},
        "version": {"const": 1},
        "exported_at": {"type": "string"},
        "tables": {"type": "array", "items": TABLE},
        "lineage": {"type": "array", "items": EDGE},
    },
}
