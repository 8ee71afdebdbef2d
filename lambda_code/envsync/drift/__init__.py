"""Schema drift: introspect a live schema into a normalised model, and compare two of them."""
