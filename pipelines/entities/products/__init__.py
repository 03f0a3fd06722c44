"""Products: wide or long price lists, attributes, per-product checks, mirror mode."""
