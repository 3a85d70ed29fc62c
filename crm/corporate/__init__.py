"""Corporate accounts at the till: negotiated discounts, sign-for-bill (挂账), statements, payments, ageing."""
