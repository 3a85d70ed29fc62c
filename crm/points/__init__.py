"""Points ledger: accounts, immutable entries, lots for FIFO expiry."""
