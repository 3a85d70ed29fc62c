"""Tables of crm.dayend (placeholder: filled in by issue 17)."""
