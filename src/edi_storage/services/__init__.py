"""Services: one per area, each a set of operations that validate, then read or write in one transaction."""
