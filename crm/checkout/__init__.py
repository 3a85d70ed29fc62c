"""The cashier's checkout: price the bill, redeem and earn points, void."""
