"""The catalog's section of the bundle and its admin screen; the file handling is in
governance.bulk (see docs/bulk.md)."""
