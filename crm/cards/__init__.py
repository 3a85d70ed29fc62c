"""Member cards: numbers, signed QR codes, issue / lost / replace / freeze, scanning."""
