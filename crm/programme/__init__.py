"""Programme rules an operator edits (card fee now; points and stored value later)."""
