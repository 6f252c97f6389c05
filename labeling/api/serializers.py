"""Serializers shared by the labeling API views."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """A serializer that rejects fields it does not know, instead of silently ignoring them.

    A typo such as ``{"labls": [...]}`` would otherwise "succeed" and change nothing.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field; see the API docs for the fields accepted here."] for name in unknown}
                )
        return super().to_internal_value(data)
