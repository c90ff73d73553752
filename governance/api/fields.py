from rest_framework import serializers


class JSONField(serializers.JSONField):
    """DRF's JSONField, except that `null` typed into a form field is refused like a JSON
    null when the field does not allow null (DRF parses form text after its null check)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value is None and not self.allow_null:
            self.fail("null")
        return value
