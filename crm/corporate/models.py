"""Tables of crm.corporate (placeholder: filled in by issue 17)."""
