"""Staff accounts, roles, API tokens, UI sessions and the deny-by-default access check."""
