"""The OpenAPI schema says every answer an operation can give, errors included.

drf-spectacular documents the success of each operation; this schema class adds the error
answers that the shared layers give, where they give them, unless a view documents its own:

- 400 on every operation: any request may carry text no database can store (see parsers),
  and the others validate their parameters and bodies; 414 on every operation (a URL
  longer than gunicorn reads);
- 401 and 403 where a signed-in user is required; 404 where the path names an object or the
  list is paged (a page past the end); 409 on deletes (the object is still used); 415 where a
  body is read; 429 everywhere (every client is throttled).
"""

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """An error that concerns the request as a whole."""

    detail = serializers.CharField()


VALIDATION_ERROR = {
    "type": "object",
    "description": "Each invalid field, query parameter or JSON pointer with its messages (a "
    "list of strings, or the errors of a nested item), or `detail` for the request as a whole.",
    "additionalProperties": {},
}


class StillUsedBySerializer(serializers.Serializer):
    model = serializers.CharField()
    count = serializers.IntegerField()
    names = serializers.ListField(
        child=serializers.CharField(), help_text="Only those you may view; the rest are counted."
    )


class ConflictSerializer(ErrorSerializer):
    still_used_by = StillUsedBySerializer(many=True)


ERRORS = {
    "400": ("The request is invalid; the body names each problem.", VALIDATION_ERROR),
    "401": ("No valid credentials were given.", ErrorSerializer),
    "403": ("You may not do this.", ErrorSerializer),
    "404": ("No such object, or you may not view it; or no such page.", ErrorSerializer),
    "409": ("Other objects still use this one.", ConflictSerializer),
    "414": ("The URL is longer than the web server accepts (gunicorn: 4094 bytes).", None),
    "415": ("The body's media type is not supported.", ErrorSerializer),
    "429": ("Too many requests; try again after Retry-After seconds.", ErrorSerializer),
}


class AutoSchema(BaseAutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True  # an empty value means "not given"
        responses = operation["responses"]
        for code in self.error_codes(operation):
            if code not in responses:
                description, body = ERRORS[code]
                if body is None:  # answered by the web server, before the application
                    responses[code] = {"description": description}
                    continue
                schema = (
                    body
                    if isinstance(body, dict)
                    else self.resolve_serializer(body, "response").ref
                )
                responses[code] = {
                    "description": description,
                    "content": {"application/json": {"schema": schema}},
                }
        return operation

    def error_codes(self, operation):
        codes = ["400", "414", "429"]
        if {} not in operation.get("security", [{}]):  # a signed-in user is required
            codes += ["401", "403"]
        paged = any(p["name"] == "page" for p in operation.get("parameters", []))
        if "{" in self.path or paged:
            codes.append("404")
        if self.method == "DELETE":
            codes.append("409")
        if "requestBody" in operation:
            codes.append("415")
        return codes
