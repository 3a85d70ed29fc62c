"""Greetings and marketing campaigns."""
