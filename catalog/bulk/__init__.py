"""Bulk import and export of the catalog (JSON, YAML, CSV, XLSX); see docs/bulk.md."""
