from rest_framework import serializers


class JSONField(serializers.JSONField):
    """DRF's JSONField, except that `null` typed into a form field is refused like a JSON
    null when the field does not allow null (DRF parses form text after its null check)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value is None and not self.allow_null:
            self.fail("null")
        return value


class CharField(serializers.CharField):
    """Text is a JSON string: DRF's CharField would also take a number and store "0"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ManyRelatedField(serializers.ManyRelatedField):
    """A list is a JSON list: DRF's would also take an object and read its keys."""

    def to_internal_value(self, data):
        if not isinstance(data, list | tuple):
            self.fail("not_a_list", input_type=type(data).__name__)
        return super().to_internal_value(data)


class BooleanField(serializers.BooleanField):
    """A JSON boolean (or a form's text such as "true"): DRF's would also take the numbers
    0 and 1."""

    def to_internal_value(self, data):
        if isinstance(data, int | float) and not isinstance(data, bool):
            self.fail("invalid", input=data)
        return super().to_internal_value(data)


class SlugRelatedField(serializers.SlugRelatedField):
    """An object named by a JSON string: DRF's would also look up a number as its text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
