"""The one check of request text that no database can store: NUL characters (PostgreSQL
refuses them in text and JSON) and unpaired surrogates (they cannot be encoded as UTF-8).

Every API request passes it: the path and query string in UnstorableTextMiddleware, JSON,
form and multipart bodies in the parsers below (the API's only parsers), and views that read
their own body (OpenLineage) call refuse_unstorable() themselves. A value that fails is a 400
naming the field, or the JSON pointer of a nested value; uploaded files are left to the
import that reads them.
"""

import re

from rest_framework import parsers
from rest_framework.exceptions import ValidationError

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def message(text):
    if "\x00" in text:
        return "Null characters are not allowed."
    return "Unpaired surrogate characters are not allowed."


def _pointer_part(key):
    return str(key).replace("~", "~0").replace("/", "~1")


def find_unstorable(value, pointer=""):
    """(JSON pointer, offending text) of the first key or string in value that cannot be
    stored, or None."""
    if isinstance(value, str):
        return (pointer, value) if UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        here = f"{pointer}/{_pointer_part(key)}"
        if isinstance(key, str) and UNSTORABLE.search(key):
            return here, key
        found = find_unstorable(item, here)
        if found:
            return found
    return None


def field_errors(fields):
    """{name: [message]} for the first of the (name, values) pairs that cannot be stored, or
    {}: a top-level name as it is, a nested value by its JSON pointer."""
    for name, values in fields:
        if UNSTORABLE.search(name):
            return {"non_field_errors": [f"A field name: {message(name)}"]}
        for value in values:
            found = find_unstorable(value)
            if found:
                pointer, text = found
                return {f"/{_pointer_part(name)}{pointer}" if pointer else name: [message(text)]}
    return {}


def refuse_unstorable(data):
    """Raise a 400 naming the first value of a parsed body that cannot be stored."""
    if hasattr(data, "lists"):  # a QueryDict of form fields
        errors = field_errors(data.lists())
    elif isinstance(data, dict):
        errors = field_errors((key, [value]) for key, value in data.items())
    else:
        found = find_unstorable(data)
        errors = {found[0] or "non_field_errors": [message(found[1])]} if found else {}
    if errors:
        raise ValidationError(errors)
    return data


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return refuse_unstorable(super().parse(stream, media_type, parser_context))


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return refuse_unstorable(super().parse(stream, media_type, parser_context))


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        refuse_unstorable(parsed.data)  # the form fields; files are read by their importer
        return parsed
