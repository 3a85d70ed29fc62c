"""Tables of crm.frontdesk (placeholder: filled in by issue 17)."""
