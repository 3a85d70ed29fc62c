"""The member's own pages: the private phone-card link grown into their account (read-only,
bar withdrawing consent)."""
