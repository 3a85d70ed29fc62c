"""Bulk work on an audience: grant points, issue a coupon, add or remove a tag, set a level."""
