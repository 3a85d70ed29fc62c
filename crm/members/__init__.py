"""Members, their levels (tiers) and corporate accounts."""
