"""Hotel front desk: PMS reservations, the arrivals list and members' preferences."""
