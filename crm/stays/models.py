"""Tables of crm.stays (placeholder: filled in by issue 17)."""
