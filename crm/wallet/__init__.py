"""Stored value 储值: principal and bonus ledgers, top-ups with bonus tiers, refunds, PIN."""
