"""Stores of the chain: restaurants and hotels, each with its own time zone."""
