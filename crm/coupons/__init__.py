"""Coupons 券: definitions with limited stock, issued single-use coupons, top-up gifts, the lucky draw."""
