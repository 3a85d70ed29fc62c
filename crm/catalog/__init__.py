"""Catalogue (dishes, set meals, room types), member prices, promotions and the pricing rule."""
