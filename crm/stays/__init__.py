"""Hotel stays in the loyalty programme: points and level spend earned by a member's stays."""
