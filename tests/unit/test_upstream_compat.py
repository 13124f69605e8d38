"""Compatibility review: what the CRD shows matches what the operator computes."""
from __future__ import annotations

from api.v1alpha1.crd import crd
from api.v1alpha1.markers import api_fields, field_info, json_name
from api.v1alpha1.types import StatusSummary


def test_printer_column_descriptions_say_what_the_summary_fields_count() -> None:
    """A column on a status.summary field describes it as the field's own description does."""
    fields = {json_name(field): field_info(field).description for field, _, _ in api_fields(StatusSummary)}
    for column in crd()["spec"]["versions"][0]["additionalPrinterColumns"]:
        path = column["jsonPath"]
        if path.startswith(".status.summary."):
            assert column["description"] == fields[path.rsplit(".", 1)[1]], column["name"]
