"""Bulk import and export of the bundle (JSON, YAML, CSV, XLSX); see docs/bulk.md."""
