"""Customers: one PUT each (no bulk route), addresses and contacts, customer attributes."""
