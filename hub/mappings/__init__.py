"""Field mappings, sandboxed templates and the rendering of a CRM record into a target object.

`TargetRenderer` is the entry point: `check()` when a rule is saved, `render()` per event and
for the preview. See render.py (sandbox and limits), fields.py (values) and context.py (context,
details block, rich text)."""
from .context import Carry, Rendered, SourceRecord, TargetRenderer, KNOWN_NAMES, sample_record
from .fields import Mapping, catalog_choices, field_value
from .render import Limits, TemplateProblem

__all__ = ["Carry", "KNOWN_NAMES", "Limits", "Mapping", "Rendered", "SourceRecord", "TargetRenderer",
           "TemplateProblem", "catalog_choices", "field_value", "sample_record"]
