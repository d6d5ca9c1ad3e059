"""The posture checks, one small module per area; :mod:`claudesec.org.catalogue` joins them."""
