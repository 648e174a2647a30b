"""Glue to the libraries around us, kept here so their API changes never reach the core."""
