"""The cashier's day-end (日结): a store's day by cashier and tender, and who checked it."""
